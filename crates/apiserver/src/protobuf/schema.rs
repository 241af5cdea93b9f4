//! Protobuf field numbers of the kinds this server accepts in protobuf
//! (from Kubernetes' `generated.proto` files). PLACEHOLDER: being filled in.

/// The type of a field.
#[derive(Debug)]
pub enum Ty {
    /// string
    Str,
    /// bytes (JSON: base64)
    Bytes,
    /// int64
    I64,
    /// int32
    I32,
    /// bool
    Bool,
    /// meta/v1 Time (JSON: RFC 3339 seconds)
    Time,
    /// meta/v1 MicroTime (JSON: RFC 3339 microseconds)
    MicroTime,
    /// resource.Quantity (JSON: its string)
    Quantity,
    /// a nested message
    Msg(&'static [Field]),
    /// map<string,string>
    MapStr,
    /// map<string,bytes>
    MapBytes,
    /// map<string,Message>
    MapMsg(&'static [Field]),
    /// certificates/authorization ExtraValue (JSON: list of strings)
    ExtraValue,
    /// map<string,ExtraValue> (JSON: map of string lists)
    MapExtra,
}

/// One field of a message.
#[derive(Debug)]
pub struct Field {
    /// Field number.
    pub num: u32,
    /// JSON name.
    pub name: &'static str,
    /// Type.
    pub ty: Ty,
    /// `repeated`.
    pub repeated: bool,
}
