//! The ranks of a `tandem` process: one without the `mpi` feature or outside `mpirun`;
//! under `mpirun -np R` (feature `mpi`) the R processes of a data-parallel run.
//!
//! Rank 0 logs and writes the output folder; the other ranks train silently. A rank whose
//! command fails prints its error and ends every rank (`MPI_Abort`), so none waits for it.
use std::sync::Arc;
use tandem::tensor::Collective;

/// This process's place in the run.
pub struct Ranks {
    #[cfg(feature = "mpi")]
    mpi: Arc<tandem::train::mpi::Mpi>,
}

impl Ranks {
    /// Joins the run (initialises MPI with the `mpi` feature).
    pub fn init() -> anyhow::Result<Self> {
        #[cfg(feature = "mpi")]
        {
            Ok(Self {
                mpi: Arc::new(tandem::train::mpi::Mpi::init()?),
            })
        }
        #[cfg(not(feature = "mpi"))]
        Ok(Self {})
    }

    /// This process's rank (0 without MPI).
    pub fn rank(&self) -> usize {
        self.collective().map_or(0, |c| c.rank())
    }

    /// The collective of a run of more than one rank.
    pub fn collective(&self) -> Option<Arc<dyn Collective>> {
        #[cfg(feature = "mpi")]
        {
            let c: Arc<dyn Collective> = self.mpi.clone();
            (c.ranks() > 1).then_some(c)
        }
        #[cfg(not(feature = "mpi"))]
        None
    }

    /// After a failed command: in a run of several ranks, ends them all with `code`.
    pub fn abort_others(&self, code: i32) {
        #[cfg(feature = "mpi")]
        if self.mpi.ranks() > 1 {
            self.mpi.abort(code);
        }
        let _ = code;
    }
}
