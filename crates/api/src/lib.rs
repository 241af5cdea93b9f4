//! What the k8s-openapi wire types lack, and nothing with I/O: the `Status` error body,
//! the meta.k8s.io `Table`, Kubernetes' human durations and time formats, the clock and randomness.

pub mod clock;
pub mod labels;
pub mod random;
pub mod status;
pub mod table;

pub use clock::{Clock, SystemClock};
pub use random::{OsRandom, Random};
pub use status::{Status, StatusCause, StatusDetails};
pub use table::{Table, TableColumn, TableRow};
