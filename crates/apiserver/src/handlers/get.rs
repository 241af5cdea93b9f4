//! `get`: one object, as JSON or a one-row Table.

use http::StatusCode;

use super::{Handlers, Res, Want};
use crate::listoptions;
use crate::registry::ResourceDef;
use crate::requestinfo::Query;
use crate::response;
use crate::shape::Shape;
use crate::tables;

impl Handlers {
    pub(super) async fn get(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        q: &Query,
        want: &Want,
    ) -> Res {
        if let Some(rv) = listoptions::must_have_reached(q)? {
            self.fresh_enough(rv).await?;
        }
        let (obj, _) = self.read_object(def, ns, name).await?;
        let obj = self.output(def, obj);
        let answer = match want.shape {
            Shape::Table => {
                let table = tables::of_one(def, obj, self.now(), &want.include_object);
                return Ok(response::json(StatusCode::OK, &table));
            }
            Shape::Metadata => crate::shape::partial(&obj),
            Shape::Object => obj,
        };
        Ok(response::json(StatusCode::OK, &answer))
    }
}
