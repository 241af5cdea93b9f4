//! What the k8s-openapi wire types lack, and nothing with I/O: the `Status` error body,
//! the meta.k8s.io `Table`, Kubernetes' human durations and time formats, and the clock.

pub mod clock;
pub mod status;
pub mod table;

pub use clock::{Clock, SystemClock};
pub use status::{Status, StatusCause, StatusDetails};
pub use table::{Table, TableColumn, TableRow};
