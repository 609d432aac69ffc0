//! The MPI ranks of an xtask process (feature `mpi`; one rank otherwise), and output that only
//! rank 0 prints.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tandem::tensor::Collective;

static QUIET: AtomicBool = AtomicBool::new(false);

#[cfg(feature = "mpi")]
static WORLD: std::sync::OnceLock<Arc<tandem::train::mpi::Mpi>> = std::sync::OnceLock::new();

/// The collective of a run under `mpirun` with more than one rank (`None` otherwise). Call
/// once per process: it initialises MPI. On ranks other than 0 it also silences [`say!`].
pub fn collective() -> anyhow::Result<Option<Arc<dyn Collective>>> {
    #[cfg(feature = "mpi")]
    {
        let world = match WORLD.get() {
            Some(w) => w.clone(),
            None => {
                let w = Arc::new(tandem::train::mpi::Mpi::init()?);
                let _ = WORLD.set(w.clone());
                w
            }
        };
        let mpi: Arc<dyn Collective> = world;
        QUIET.store(mpi.rank() != 0, Ordering::Relaxed);
        Ok((mpi.ranks() > 1).then_some(mpi))
    }
    #[cfg(not(feature = "mpi"))]
    Ok(None)
}

/// After an error: in a run of several ranks, ends them all (`MPI_Abort`) so none waits for
/// this one; nothing otherwise.
pub fn abort_others() {
    #[cfg(feature = "mpi")]
    if let Some(w) = WORLD.get() {
        if w.ranks() > 1 {
            w.abort(1);
        }
    }
}

/// Whether this process is a rank other than 0 (prints and writes nothing).
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// `println!` on rank 0 only.
macro_rules! say {
    ($($arg:tt)*) => {
        if !$crate::ranks::quiet() {
            println!($($arg)*);
        }
    };
}
pub(crate) use say;
