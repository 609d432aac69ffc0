//! MPI as the [`Collective`] of a data-parallel run (feature `mpi`): ranks are processes
//! started by `mpirun -np R`, on one machine or several (OpenMPI is the tested
//! implementation).
//!
//! [`Collective::gather`] is `MPI_Allgather` of the vector lengths, then `MPI_Allgatherv` of
//! the values; [`Collective::sum`] adds the gathered vectors in rank order on every rank (the
//! trait's provided method), so the sum does not depend on the reduction tree MPI would pick.
//! MPI is initialised with `MPI_THREAD_SERIALIZED` and every call goes through one mutex.
//!
//! A rank that fails must not leave the others waiting in a collective: call
//! [`Mpi::abort`] after reporting the error, which ends every rank (`MPI_Abort`). A rank that
//! dies (killed, crashed) makes `mpirun` end the others and report it.
use mpi::datatype::PartitionMut;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives};
use std::sync::Mutex;
use tandem_tensor::{Collective, CollectiveError};

/// The world communicator, sent between threads only under the mutex of [`Mpi`].
struct World(SimpleCommunicator);

// SAFETY: MPI is initialised with `Threading::Serialized` (checked in `Mpi::init`), which
// allows calls from any thread as long as no two run at once; every use of the communicator
// goes through `Mpi::world`'s mutex.
unsafe impl Send for World {}

/// The MPI world of this process (see the module docs). Keep it alive for the whole run:
/// dropping it finalises MPI.
pub struct Mpi {
    world: Mutex<World>,
    rank: usize,
    ranks: usize,
    // Dropped last: finalises MPI.
    _universe: mpi::environment::Universe,
}

impl std::fmt::Debug for Mpi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mpi(rank {} of {})", self.rank, self.ranks)
    }
}

impl Mpi {
    /// Initialises MPI (a process started without `mpirun` is a world of one rank).
    pub fn init() -> Result<Self, CollectiveError> {
        let fail = |reason: String| CollectiveError {
            op: "init",
            rank: 0,
            ranks: 0,
            reason,
        };
        let (universe, level) = mpi::initialize_with_threading(mpi::Threading::Serialized)
            .ok_or_else(|| fail("MPI was already initialised in this process".into()))?;
        if level < mpi::Threading::Serialized {
            return Err(fail(format!(
                "the MPI library offers thread level {level:?}; tandem needs Serialized"
            )));
        }
        let world = universe.world();
        let (rank, ranks) = (world.rank() as usize, world.size() as usize);
        Ok(Self {
            world: Mutex::new(World(world)),
            rank,
            ranks,
            _universe: universe,
        })
    }

    /// Ends every rank of the run with exit code `code` (`MPI_Abort`): what a rank does after
    /// it reported an error, so that no other rank waits for it.
    pub fn abort(&self, code: i32) -> ! {
        let world = match self.world.lock() {
            Ok(w) => w,
            Err(poisoned) => poisoned.into_inner(),
        };
        world.0.abort(code)
    }

    fn error(&self, op: &'static str, reason: String) -> CollectiveError {
        CollectiveError {
            op,
            rank: self.rank,
            ranks: self.ranks,
            reason,
        }
    }
}

impl Collective for Mpi {
    fn rank(&self) -> usize {
        self.rank
    }

    fn ranks(&self) -> usize {
        self.ranks
    }

    fn gather(&self, values: &[f64]) -> Result<Vec<Vec<f64>>, CollectiveError> {
        if self.ranks == 1 {
            return Ok(vec![values.to_vec()]);
        }
        let world = self
            .world
            .lock()
            .map_err(|_| self.error("gather", "a thread panicked in a collective".into()))?;
        let len = i32::try_from(values.len())
            .map_err(|_| self.error("gather", format!("{} values exceed i32", values.len())))?;
        let mut counts = vec![0i32; self.ranks];
        world.0.all_gather_into(&len, &mut counts[..]);
        let mut displs = Vec::with_capacity(self.ranks);
        let mut total = 0i64;
        for &c in &counts {
            displs.push(
                i32::try_from(total)
                    .map_err(|_| self.error("gather", "the gathered vector exceeds i32".into()))?,
            );
            total += i64::from(c);
        }
        let mut all = vec![0f64; total as usize];
        {
            let mut partition = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            world.0.all_gather_varcount_into(values, &mut partition);
        }
        let mut out = Vec::with_capacity(self.ranks);
        for (&c, &d) in counts.iter().zip(&displs) {
            out.push(all[d as usize..(d + c) as usize].to_vec());
        }
        Ok(out)
    }
}
