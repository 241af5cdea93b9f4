//! What the k8s-openapi wire types lack, and no I/O but one writer: the `Status` error body,
//! the meta.k8s.io `Table`, Kubernetes' human durations and time formats, the clock and randomness,
//! label selectors; and the one writer of a command's output.

pub mod cidr;
pub mod clock;
pub mod labels;
pub mod names;
pub mod output;
pub mod random;
pub mod status;
pub mod table;
pub mod version;

pub use clock::{Clock, SystemClock};
pub use random::{OsRandom, Random};
pub use status::{Status, StatusCause, StatusDetails};
pub use table::{Table, TableColumn, TableRow};
