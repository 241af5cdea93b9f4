//! gRPC over HTTP/2 as etcd's members serve it, on the hyper and rustls stack the rest of
//! kubeboot uses: a request is `POST /<service>/<method>` with `content-type:
//! application/grpc`; each message travels as a flag byte (0: not compressed), a 4-byte
//! big-endian length and the protobuf bytes; the outcome is the `grpc-status` and
//! `grpc-message` of the trailers (or of the headers, when the answer has no body). One
//! HTTP/2 connection per member carries every request at once.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::HeaderMap;
use hyper::body::{Body, Frame};

/// The largest message accepted (a list of very many objects).
pub(super) const MAX_MESSAGE: usize = 1 << 30;

/// A message framed for the wire.
pub(super) fn frame(msg: &impl prost::Message) -> Bytes {
    let len = msg.encoded_len();
    let mut out = BytesMut::with_capacity(5 + len);
    out.put_u8(0);
    out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
    // Encoding into a buffer with room for the message cannot fail.
    let _ = msg.encode(&mut out);
    out.freeze()
}

/// Splits received bytes into messages.
#[derive(Default)]
pub(super) struct Deframer {
    buf: BytesMut,
}

impl Deframer {
    /// Adds received bytes.
    pub(super) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole message, if one has arrived.
    pub(super) fn next(&mut self) -> Result<Option<Bytes>, String> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        if self.buf[0] != 0 {
            return Err("etcd sent a compressed message, which was not asked for".into());
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > MAX_MESSAGE {
            return Err(format!(
                "etcd sent a message of {len} bytes, over the limit"
            ));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        self.buf.advance(5);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// Whether bytes of an unfinished message are left.
    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// A gRPC status: its code (0 is OK) and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Status {
    pub(super) code: i64,
    pub(super) message: String,
}

/// The status in `headers` (trailers, or the headers of an answer without a body).
pub(super) fn status(headers: &HeaderMap) -> Option<Status> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    Some(Status { code, message })
}

/// `grpc-message` is percent-encoded (UTF-8).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push(((hex(h).unwrap_or(0) << 4) | hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request body: the messages sent into it, until its sender goes (a watch stream stays
/// open while it is followed).
pub(super) struct Outgoing {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
}

impl Outgoing {
    /// A body of exactly one message.
    pub(super) fn once(message: Bytes) -> Self {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let _ = tx.try_send(message);
        Self { rx }
    }

    /// A body fed by the returned sender.
    pub(super) fn channel() -> (tokio::sync::mpsc::Sender<Bytes>, Self) {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        (tx, Self { rx })
    }
}

impl Body for Outgoing {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

/// A gRPC request to `endpoint` (`http://host:port` or `https://…`) for `method`
/// (`/etcdserverpb.KV/Range`). `hasleader` asks etcd to refuse, and to end watches, on a
/// member that has lost its leader (a partitioned member), so we move on to another.
pub(super) fn request(
    endpoint: &str,
    method: &str,
    body: Outgoing,
) -> Result<http::Request<Outgoing>, http::Error> {
    http::Request::post(format!("{endpoint}{method}"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header("hasleader", "true")
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_framed_with_its_length_and_read_back_whole() {
        let msg = super::super::proto::CompactionRequest { revision: 300 };
        let framed = frame(&msg);
        assert_eq!(&framed[..5], &[0, 0, 0, 0, 3], "flag, then the length");
        let mut d = Deframer::default();
        // Arriving a byte at a time, then two at once.
        for b in &framed[..framed.len() - 1] {
            d.push(&[*b]);
            assert_eq!(d.next(), Ok(None));
        }
        d.push(&framed[framed.len() - 1..]);
        d.push(&framed);
        d.push(&framed);
        for _ in 0..3 {
            let got = d.next().expect("ok").expect("a message");
            let back: super::super::proto::CompactionRequest =
                prost::Message::decode(got).expect("decodes");
            assert_eq!(back, msg);
        }
        assert_eq!(d.next(), Ok(None));
        assert!(d.is_empty());
    }

    #[test]
    fn compressed_and_oversized_messages_are_refused() {
        let mut d = Deframer::default();
        d.push(&[1, 0, 0, 0, 1, 9]);
        assert!(d.next().is_err());
        let mut d = Deframer::default();
        d.push(&[0, 0xff, 0xff, 0xff, 0xff]);
        assert!(d.next().is_err());
    }

    #[test]
    fn the_status_is_read_with_its_percent_encoded_message() {
        let mut h = HeaderMap::new();
        assert_eq!(status(&h), None);
        h.insert("grpc-status", "11".parse().expect("value"));
        h.insert(
            "grpc-message",
            "etcdserver:%20mvcc:%20required%20revision%20has%20been%20compacted%zz"
                .parse()
                .expect("value"),
        );
        assert_eq!(
            status(&h),
            Some(Status {
                code: 11,
                message: "etcdserver: mvcc: required revision has been compacted%zz".into()
            })
        );
        h.insert("grpc-status", "0".parse().expect("value"));
        h.remove("grpc-message");
        assert_eq!(
            status(&h),
            Some(Status {
                code: 0,
                message: String::new()
            })
        );
    }
}
