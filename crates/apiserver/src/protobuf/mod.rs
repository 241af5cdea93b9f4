//! Kubernetes' protobuf encoding, decoded into JSON: typed clients (kubectl's typed
//! commands, client-go's clientsets) send `application/vnd.kubernetes.protobuf` bodies.
//! The envelope is the magic `k8s\0` then a `runtime.Unknown` message whose `raw` field
//! holds the object; `schema` describes the field numbers of the kinds served here.

pub mod schema;

use base64::Engine;
use serde_json::{Map, Value};

use schema::{Field, Ty};

/// The protobuf media type.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

/// Decodes a protobuf request body into the JSON form of the object, whose fields
/// `schema_of(apiVersion, kind)` gives.
pub fn decode(
    body: &[u8],
    schema_of: impl Fn(&str, &str) -> Option<&'static [Field]>,
) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("protobuf body does not start with the k8s magic prefix")?;
    let unknown = decode_message(rest, schema::UNKNOWN)?;
    let api_version = unknown
        .pointer("/typeMeta/apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let kind = unknown
        .pointer("/typeMeta/kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let raw = unknown
        .get("raw")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map_err(|e| e.to_string())?;
    let fields = schema_of(&api_version, &kind)
        .ok_or_else(|| format!("protobuf is not supported for {api_version} {kind}; send JSON"))?;
    let mut obj = decode_message(&raw, fields)?;
    if let Value::Object(o) = &mut obj {
        o.insert("apiVersion".into(), Value::String(api_version));
        o.insert("kind".into(), Value::String(kind));
    }
    Ok(obj)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut out = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            out |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(out);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self) -> Result<&'a [u8], String> {
        let n = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or("truncated field")?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn skip(&mut self, wire: u64) -> Result<(), String> {
        match wire {
            0 => self.varint().map(|_| ()),
            1 => self.advance(8),
            2 => self.bytes().map(|_| ()),
            5 => self.advance(4),
            other => Err(format!("unsupported wire type {other}")),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), String> {
        if self.pos + n > self.buf.len() {
            return Err("truncated field".into());
        }
        self.pos += n;
        Ok(())
    }
}

/// Decodes one message with the given fields into a JSON object.
pub fn decode_message(buf: &[u8], fields: &[Field]) -> Result<Value, String> {
    let mut r = Reader { buf, pos: 0 };
    let mut out = Map::new();
    while r.pos < buf.len() {
        let tag = r.varint()?;
        let (num, wire) = (u32::try_from(tag >> 3).map_err(|_| "bad tag")?, tag & 7);
        let Some(f) = fields.iter().find(|f| f.num == num) else {
            r.skip(wire)?;
            continue;
        };
        let v = decode_value(&mut r, wire, &f.ty)?;
        match &f.ty {
            Ty::MapStr | Ty::MapBytes | Ty::MapMsg(_) | Ty::MapExtra | Ty::MapQuantity => {
                let entry = out
                    .entry(f.name)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Value::Object(m), Value::Array(kv)) = (entry, v)
                    && let [Value::String(k), val] = kv.as_slice()
                {
                    m.insert(k.clone(), val.clone());
                }
            }
            _ if f.repeated => {
                let entry = out.entry(f.name).or_insert_with(|| Value::Array(vec![]));
                if let Value::Array(a) = entry {
                    a.push(v);
                }
            }
            // proto2 writes every non-pointer field; JSON omits the empty ones.
            _ if is_empty_value(&v) => {}
            _ => {
                out.insert(f.name.to_owned(), v);
            }
        }
    }
    Ok(Value::Object(out))
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Object(o) => o.is_empty(),
        Value::Array(_) => false,
    }
}

/// A meta/v1 Time (RFC 3339, seconds) or MicroTime (microseconds); `null` for zero.
fn time(buf: &[u8], micro: bool) -> Result<Value, String> {
    let t = decode_message(buf, schema::TIME)?;
    let secs = t.get("seconds").and_then(Value::as_i64).unwrap_or(0);
    let nanos = t.get("nanos").and_then(Value::as_i64).unwrap_or(0);
    if secs == 0 && nanos == 0 {
        return Ok(Value::Null);
    }
    let ts = time::OffsetDateTime::from_unix_timestamp(secs).map_err(|e| e.to_string())?;
    let base = ts
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| e.to_string())?;
    Ok(Value::String(match micro {
        true => format!("{}.{:06}Z", base.trim_end_matches('Z'), nanos / 1000),
        false => base,
    }))
}

/// One entry of a protobuf map, as `[key, value]`.
fn map_entry(buf: &[u8], value: Ty) -> Result<Value, String> {
    let entry_fields = [
        Field {
            num: 1,
            name: "key",
            ty: Ty::Str,
            repeated: false,
        },
        Field {
            num: 2,
            name: "value",
            ty: value,
            repeated: false,
        },
    ];
    let e = decode_message(buf, &entry_fields)?;
    Ok(Value::Array(vec![
        e.get("key")
            .cloned()
            .unwrap_or(Value::String(String::new())),
        e.get("value").cloned().unwrap_or(Value::Null),
    ]))
}

fn decode_value(r: &mut Reader<'_>, wire: u64, ty: &Ty) -> Result<Value, String> {
    let text = |b: &[u8]| {
        String::from_utf8(b.to_vec()).map_err(|_| "string field is not UTF-8".to_owned())
    };
    Ok(match ty {
        Ty::Str => Value::String(text(r.bytes()?)?),
        Ty::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(r.bytes()?)),
        Ty::I64 | Ty::I32 => {
            let v = r.varint()? as i64;
            Value::from(if matches!(ty, Ty::I32) {
                i64::from(v as i32)
            } else {
                v
            })
        }
        Ty::Bool => Value::Bool(r.varint()? != 0),
        Ty::Time => time(r.bytes()?, false)?,
        Ty::MicroTime => time(r.bytes()?, true)?,
        Ty::Quantity => decode_message(r.bytes()?, schema::QUANTITY)?
            .get("string")
            .cloned()
            .unwrap_or(Value::Null),
        Ty::Msg(fields) => decode_message(r.bytes()?, fields)?,
        Ty::MapStr => map_entry(r.bytes()?, Ty::Str)?,
        Ty::MapBytes => map_entry(r.bytes()?, Ty::Bytes)?,
        Ty::MapMsg(fields) => map_entry(r.bytes()?, Ty::Msg(fields))?,
        Ty::MapExtra => map_entry(r.bytes()?, Ty::ExtraValue)?,
        Ty::MapQuantity => map_entry(r.bytes()?, Ty::Quantity)?,
        Ty::IntOrString => {
            let m = decode_message(r.bytes()?, schema::INT_OR_STRING)?;
            match m.get("type").and_then(Value::as_i64).unwrap_or(0) {
                0 => m.get("intVal").cloned().unwrap_or(Value::from(0)),
                _ => m.get("strVal").cloned().unwrap_or_default(),
            }
        }
        Ty::ExtraValue => {
            let m = decode_message(r.bytes()?, schema::EXTRA_VALUE)?;
            m.get("items").cloned().unwrap_or(Value::Array(vec![]))
        }
    })
    .and_then(|v| {
        if wire > 5 {
            Err("bad wire type".into())
        } else {
            Ok(v)
        }
    })
}
