//! The few TensorBoard messages we write, encoded by hand in the protobuf wire format
//! (protobuf.dev "Encoding": varints, fixed64/fixed32, length-delimited fields).
//!
//! Field numbers follow `tensorboard/compat/proto/event.proto` (`Event`: wall_time = 1,
//! step = 2, file_version = 3, summary = 5) and `summary.proto` (`Summary`: value = 1;
//! `Summary.Value`: tag = 1, simple_value = 2, image = 4; `Summary.Image`: height = 1,
//! width = 2, colorspace = 3, encoded_image_string = 4).

/// Wire types of the protobuf encoding.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// One message being encoded; fields are appended in the order written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn key(&mut self, field: u32, wire: u8) {
        self.raw_varint(((field as u64) << 3) | wire as u64);
    }

    fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn varint(mut self, field: u32, v: u64) -> Self {
        self.key(field, VARINT);
        self.raw_varint(v);
        self
    }

    fn double(mut self, field: u32, v: f64) -> Self {
        self.key(field, FIXED64);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn float(mut self, field: u32, v: f32) -> Self {
        self.key(field, FIXED32);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn bytes(mut self, field: u32, v: &[u8]) -> Self {
        self.key(field, LEN);
        self.raw_varint(v.len() as u64);
        self.0.extend_from_slice(v);
        self
    }

    fn message(self, field: u32, m: Message) -> Self {
        self.bytes(field, &m.0)
    }
}

/// The first event of every file: `file_version = "brain.Event:2"`.
pub fn file_version_event(wall_time: f64) -> Vec<u8> {
    Message::default().double(1, wall_time).bytes(3, b"brain.Event:2").0
}

/// An `Event` whose `Summary` holds one `simple_value` per `(tag, value)`.
pub fn scalars_event(wall_time: f64, step: i64, scalars: &[(&str, f64)]) -> Vec<u8> {
    let summary = scalars.iter().fold(Message::default(), |s, &(tag, value)| {
        s.message(1, Message::default().bytes(1, tag.as_bytes()).float(2, value as f32))
    });
    event(wall_time, step, summary)
}

/// A PNG-encoded image of `width × height` pixels with `channels` (1 grey, 3 RGB, 4 RGBA,
/// the `Summary.Image.colorspace` values).
pub struct EncodedImage<'a> {
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    pub png: &'a [u8],
}

/// An `Event` whose `Summary` holds one `Summary.Image` under `tag`.
pub fn image_event(wall_time: f64, step: i64, tag: &str, image: &EncodedImage<'_>) -> Vec<u8> {
    let img = Message::default()
        .varint(1, image.height as u64)
        .varint(2, image.width as u64)
        .varint(3, image.channels as u64)
        .bytes(4, image.png);
    let value = Message::default().bytes(1, tag.as_bytes()).message(4, img);
    event(wall_time, step, Message::default().message(1, value))
}

fn event(wall_time: f64, step: i64, summary: Message) -> Vec<u8> {
    Message::default().double(1, wall_time).varint(2, step as u64).message(5, summary).0
}

/// The `step` of an encoded `Event` (0 when absent, as protobuf defaults it); `None` when
/// the bytes are not a well-formed message.
pub fn event_step(mut bytes: &[u8]) -> Option<i64> {
    fn varint(bytes: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = bytes.split_first()?;
            *bytes = rest;
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                return Some(v);
            }
        }
        None
    }
    let mut step = 0;
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let skip = match (key & 7) as u8 {
            VARINT => {
                let v = varint(&mut bytes)?;
                if key >> 3 == 2 {
                    step = v as i64;
                }
                0
            }
            FIXED64 => 8,
            LEN => usize::try_from(varint(&mut bytes)?).ok()?,
            FIXED32 => 4,
            _ => return None,
        };
        bytes = bytes.get(skip..)?;
    }
    Some(step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_known_bytes() {
        // Event { wall_time: 1.5, step: 300, summary { value { tag: "a", simple_value: 2.0 } } }
        let bytes = scalars_event(1.5, 300, &[("a", 2.0)]);
        let mut expected = vec![0x09];
        expected.extend_from_slice(&1.5f64.to_le_bytes());
        expected.extend_from_slice(&[0x10, 0xac, 0x02, 0x2a, 0x0a, 0x0a, 0x08, 0x0a, 0x01, b'a', 0x15]);
        expected.extend_from_slice(&2.0f32.to_le_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn reads_the_step_back() {
        assert_eq!(event_step(&scalars_event(1.5, 300, &[("a", 2.0)])), Some(300));
        let png = EncodedImage { width: 1, height: 1, channels: 3, png: b"png" };
        assert_eq!(event_step(&image_event(1.5, 7, "samples", &png)), Some(7));
        assert_eq!(event_step(&file_version_event(1.5)), Some(0));
        let whole = scalars_event(1.5, 300, &[("a", 2.0)]);
        assert_eq!(event_step(&whole[..whole.len() - 2]), None, "a cut message is not read");
    }
}
