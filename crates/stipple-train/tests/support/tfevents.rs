//! An independent reader of TensorBoard event files for the tests: TFRecord framing
//! (`tensorflow/core/lib/io/record_reader.cc`: u64 length, masked CRC-32C of it, data,
//! masked CRC-32C of the data) and just enough protobuf decoding for `Event` / `Summary`
//! (`tensorboard/compat/proto/event.proto`, `summary.proto`).

/// What a `Summary.Value` holds.
#[derive(Debug, PartialEq)]
pub enum Value {
    Scalar(f32),
    Image { height: u64, width: u64, colorspace: u64, png: Vec<u8> },
}

/// One decoded `Event`.
#[derive(Debug, Default)]
pub struct Event {
    pub wall_time: f64,
    pub step: i64,
    pub file_version: Option<String>,
    pub values: Vec<(String, Value)>,
}

/// CRC-32C bit by bit (polynomial 0x82F63B78, reflected), masked as TFRecord does.
fn masked_crc(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    let crc = !crc;
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Splits a TFRecord file into its records, checking both CRCs of each.
pub fn records(mut file: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !file.is_empty() {
        let len_bytes = &file[..8];
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
        assert_eq!(u32::from_le_bytes(file[8..12].try_into().unwrap()), masked_crc(len_bytes), "length CRC");
        let data = &file[12..12 + len];
        assert_eq!(u32::from_le_bytes(file[12 + len..16 + len].try_into().unwrap()), masked_crc(data), "data CRC");
        out.push(data.to_vec());
        file = &file[16 + len..];
    }
    out
}

/// A protobuf field: number and payload.
enum Field<'a> {
    Varint(u32, u64),
    Fixed64(u32, [u8; 8]),
    Fixed32(u32, [u8; 4]),
    Len(u32, &'a [u8]),
}

fn varint(buf: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = buf[0];
        *buf = &buf[1..];
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return v;
        }
    }
    panic!("varint longer than 10 bytes")
}

fn fields(mut buf: &[u8]) -> Vec<Field<'_>> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf);
        let n = (key >> 3) as u32;
        out.push(match key & 7 {
            0 => Field::Varint(n, varint(&mut buf)),
            1 => {
                let (v, rest) = buf.split_at(8);
                buf = rest;
                Field::Fixed64(n, v.try_into().unwrap())
            }
            5 => {
                let (v, rest) = buf.split_at(4);
                buf = rest;
                Field::Fixed32(n, v.try_into().unwrap())
            }
            2 => {
                let len = varint(&mut buf) as usize;
                let (v, rest) = buf.split_at(len);
                buf = rest;
                Field::Len(n, v)
            }
            w => panic!("unexpected wire type {w}"),
        });
    }
    out
}

fn summary_value(buf: &[u8]) -> (String, Value) {
    let (mut tag, mut value) = (String::new(), None);
    for f in fields(buf) {
        match f {
            Field::Len(1, t) => tag = String::from_utf8(t.to_vec()).unwrap(),
            Field::Fixed32(2, v) => value = Some(Value::Scalar(f32::from_le_bytes(v))),
            Field::Len(4, img) => {
                let (mut height, mut width, mut colorspace, mut png) = (0, 0, 0, Vec::new());
                for f in fields(img) {
                    match f {
                        Field::Varint(1, v) => height = v,
                        Field::Varint(2, v) => width = v,
                        Field::Varint(3, v) => colorspace = v,
                        Field::Len(4, p) => png = p.to_vec(),
                        _ => panic!("unexpected field in Summary.Image"),
                    }
                }
                value = Some(Value::Image { height, width, colorspace, png });
            }
            _ => panic!("unexpected field in Summary.Value"),
        }
    }
    (tag, value.expect("Summary.Value without a value"))
}

/// Decodes one `Event` record.
pub fn event(buf: &[u8]) -> Event {
    let mut e = Event::default();
    for f in fields(buf) {
        match f {
            Field::Fixed64(1, v) => e.wall_time = f64::from_le_bytes(v),
            Field::Varint(2, v) => e.step = v as i64,
            Field::Len(3, v) => e.file_version = Some(String::from_utf8(v.to_vec()).unwrap()),
            Field::Len(5, summary) => {
                for f in fields(summary) {
                    match f {
                        Field::Len(1, v) => e.values.push(summary_value(v)),
                        _ => panic!("unexpected field in Summary"),
                    }
                }
            }
            _ => panic!("unexpected field in Event"),
        }
    }
    e
}
