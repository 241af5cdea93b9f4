//! The meta.k8s.io/v1 `Table` that `kubectl get` prints.

use serde::Serialize;

/// A server-side table: column definitions and rows.
#[derive(Clone, Debug, Serialize)]
pub struct Table {
    /// Always `Table`.
    pub kind: &'static str,
    /// `meta.k8s.io/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: &'static str,
    /// List metadata (`resourceVersion`, `continue`).
    pub metadata: serde_json::Value,
    /// The columns.
    #[serde(rename = "columnDefinitions")]
    pub column_definitions: Vec<TableColumn>,
    /// The rows.
    pub rows: Vec<TableRow>,
}

/// One column of a table.
#[derive(Clone, Debug, Serialize)]
pub struct TableColumn {
    /// Column name, e.g. `Name`.
    pub name: &'static str,
    /// `string`, `integer`, `date`, ...
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// `name` for the name column, else empty.
    pub format: &'static str,
    /// What the column shows.
    pub description: &'static str,
    /// 0 always shown, >0 only with `-o wide`.
    pub priority: u8,
}

/// One row of a table.
#[derive(Clone, Debug, Serialize)]
pub struct TableRow {
    /// One JSON value per column.
    pub cells: Vec<serde_json::Value>,
    /// The object (or its metadata) the row shows.
    pub object: serde_json::Value,
}

impl TableColumn {
    /// A string column shown always.
    pub const fn text(name: &'static str, description: &'static str) -> Self {
        Self {
            name,
            type_: "string",
            format: "",
            description,
            priority: 0,
        }
    }

    /// A column shown only with `-o wide`.
    pub const fn wide(self) -> Self {
        Self {
            priority: 1,
            ..self
        }
    }

    /// A column of names (`format: name`).
    pub const fn named(self) -> Self {
        Self {
            format: "name",
            ..self
        }
    }

    /// A column of times (`type: date`), as the default table of a kind without a printer.
    pub const fn date(name: &'static str, description: &'static str) -> Self {
        Self {
            type_: "date",
            ..Self::text(name, description)
        }
    }

    /// An integer column.
    pub const fn integer(name: &'static str, description: &'static str) -> Self {
        Self {
            type_: "integer",
            ..Self::text(name, description)
        }
    }

    /// The `Name` column.
    pub const NAME: Self = Self {
        name: "Name",
        type_: "string",
        format: "name",
        description: "Name must be unique within a namespace.",
        priority: 0,
    };

    /// The `Age` column.
    pub const AGE: Self = Self::text(
        "Age",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    );
}
