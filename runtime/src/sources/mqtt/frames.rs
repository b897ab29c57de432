//! MQTT framing, as far as the link needs it: where each packet of a byte stream begins and
//! ends (a type byte, a variable-length remaining length, the rest), and the AUTH packet of
//! MQTT 5 (§3.15), which the link writes for re-authentication and reads the answer of.

/// MQTT 5 control packet types (the high nibble of the first byte).
pub const CONNACK: u8 = 2;
pub const DISCONNECT: u8 = 14;
pub const AUTH: u8 = 15;

/// AUTH reason codes (§3.15.2.1).
pub const AUTH_SUCCESS: u8 = 0x00;
pub const REAUTHENTICATE: u8 = 0x19;

/// Property identifiers (§2.2.2.2).
const AUTHENTICATION_METHOD: u8 = 0x15;
const AUTHENTICATION_DATA: u8 = 0x16;
const REASON_STRING: u8 = 0x1F;

/// Follows packet boundaries through a byte stream that arrives in arbitrary pieces.
#[derive(Debug, Default)]
pub struct Splitter {
    state: State,
    /// The type of the packet the last bytes belonged to.
    packet_type: u8,
}

#[derive(Debug, Default, Clone, Copy)]
enum State {
    /// Before a packet's first byte.
    #[default]
    Boundary,
    /// In the remaining-length field: its value so far and the bytes read of it.
    Length { value: usize, bytes: u32 },
    /// In the variable header and payload: bytes left.
    Body { left: usize },
}

#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

impl Splitter {
    /// Consumes `chunk` up to the end of the packet its first byte belongs to, or all of it if
    /// that packet goes on beyond it. Returns the bytes consumed and whether the packet ended.
    pub fn advance(&mut self, chunk: &[u8]) -> Result<(usize, bool), Malformed> {
        let mut used = 0;
        while used < chunk.len() {
            match self.state {
                State::Boundary => {
                    self.packet_type = chunk[used] >> 4;
                    self.state = State::Length { value: 0, bytes: 0 };
                    used += 1;
                }
                State::Length { value, bytes } => {
                    if bytes == 4 {
                        return Err(Malformed);
                    }
                    let byte = chunk[used];
                    used += 1;
                    let value = value | (usize::from(byte & 0x7F) << (7 * bytes));
                    if byte & 0x80 != 0 {
                        self.state = State::Length {
                            value,
                            bytes: bytes + 1,
                        };
                    } else if value == 0 {
                        self.state = State::Boundary;
                        return Ok((used, true));
                    } else {
                        self.state = State::Body { left: value };
                    }
                }
                State::Body { left } => {
                    let take = left.min(chunk.len() - used);
                    used += take;
                    if take == left {
                        self.state = State::Boundary;
                        return Ok((used, true));
                    }
                    self.state = State::Body { left: left - take };
                }
            }
        }
        Ok((used, false))
    }

    /// The type of the packet the bytes last consumed belong to.
    pub fn packet_type(&self) -> u8 {
        self.packet_type
    }

    /// Whether the stream is between two packets.
    pub fn at_boundary(&self) -> bool {
        matches!(self.state, State::Boundary)
    }
}

/// An AUTH packet asking the broker to re-authenticate with `data` by `method` (§4.12.1).
pub fn reauthenticate(method: &str, data: &[u8]) -> Vec<u8> {
    let mut properties = Vec::with_capacity(6 + method.len() + data.len());
    properties.push(AUTHENTICATION_METHOD);
    properties.extend_from_slice(&(method.len() as u16).to_be_bytes());
    properties.extend_from_slice(method.as_bytes());
    properties.push(AUTHENTICATION_DATA);
    properties.extend_from_slice(&(data.len() as u16).to_be_bytes());
    properties.extend_from_slice(data);
    let mut body = vec![REAUTHENTICATE];
    put_length(&mut body, properties.len());
    body.extend_from_slice(&properties);
    let mut packet = vec![AUTH << 4];
    put_length(&mut packet, body.len());
    packet.extend_from_slice(&body);
    packet
}

/// What an AUTH packet from the broker says: its reason code and reason string.
#[derive(Debug, PartialEq, Eq)]
pub struct AuthAnswer {
    pub reason: u8,
    pub reason_string: Option<String>,
}

/// Reads a whole AUTH packet (fixed header included).
pub fn read_auth(packet: &[u8]) -> Result<AuthAnswer, Malformed> {
    let (length, header) = read_length(packet.get(1..).ok_or(Malformed)?)?;
    let body = packet
        .get(1 + header..1 + header + length)
        .ok_or(Malformed)?;
    // A remaining length of 0 means Success with no properties (§3.15.2.1).
    let Some((&reason, rest)) = body.split_first() else {
        return Ok(AuthAnswer {
            reason: AUTH_SUCCESS,
            reason_string: None,
        });
    };
    let mut reason_string = None;
    if !rest.is_empty() {
        let (length, header) = read_length(rest)?;
        let mut properties = rest.get(header..header + length).ok_or(Malformed)?;
        while let Some((&id, tail)) = properties.split_first() {
            let (value, tail) = match id {
                AUTHENTICATION_METHOD | REASON_STRING | AUTHENTICATION_DATA => {
                    let len = usize::from(u16::from_be_bytes(
                        tail.get(..2)
                            .ok_or(Malformed)?
                            .try_into()
                            .map_err(|_| Malformed)?,
                    ));
                    (tail.get(2..2 + len).ok_or(Malformed)?, &tail[2 + len..])
                }
                // User properties: two strings.
                0x26 => {
                    let first = 2 + usize::from(u16::from_be_bytes(
                        tail.get(..2)
                            .ok_or(Malformed)?
                            .try_into()
                            .map_err(|_| Malformed)?,
                    ));
                    let second = usize::from(u16::from_be_bytes(
                        tail.get(first..first + 2)
                            .ok_or(Malformed)?
                            .try_into()
                            .map_err(|_| Malformed)?,
                    ));
                    let end = first + 2 + second;
                    (tail.get(..end).ok_or(Malformed)?, &tail[end..])
                }
                _ => return Err(Malformed),
            };
            if id == REASON_STRING {
                reason_string = Some(String::from_utf8_lossy(value).into_owned());
            }
            properties = tail;
        }
    }
    Ok(AuthAnswer {
        reason,
        reason_string,
    })
}

/// The reason code of a whole CONNACK packet (§3.2.2.2).
pub fn connack_reason(packet: &[u8]) -> Option<u8> {
    let (_, header) = read_length(packet.get(1..)?).ok()?;
    packet.get(1 + header + 1).copied()
}

/// The reason code of a whole DISCONNECT packet (§3.14.2.1): 0 when it has none.
pub fn disconnect_reason(packet: &[u8]) -> Option<u8> {
    let (length, header) = read_length(packet.get(1..)?).ok()?;
    match length {
        0 => Some(0),
        _ => packet.get(1 + header).copied(),
    }
}

fn put_length(out: &mut Vec<u8>, mut length: usize) {
    loop {
        let mut byte = (length % 128) as u8;
        length /= 128;
        if length > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if length == 0 {
            return;
        }
    }
}

/// A variable byte integer: its value and how many bytes it took.
fn read_length(bytes: &[u8]) -> Result<(usize, usize), Malformed> {
    let mut value = 0usize;
    for (i, &byte) in bytes.iter().take(4).enumerate() {
        value |= usize::from(byte & 0x7F) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets of several sizes, one with a two-byte length, fed one byte at a time and
    /// whole: the splitter finds the same boundaries either way.
    #[test]
    fn boundaries_are_found_whatever_the_pieces() {
        let big = vec![0xAB; 300];
        let mut stream = vec![0x30, 3, b'a', b'b', b'c']; // PUBLISH, 3 bytes
        stream.extend_from_slice(&[0x40, 2, 0, 7]); // PUBACK
        stream.extend_from_slice(&[0x30, 0xAC, 0x02]); // PUBLISH, 300 bytes
        stream.extend_from_slice(&big);
        stream.extend_from_slice(&[0xC0, 0]); // PINGREQ
        let expected = vec![(3, 5), (4, 9), (3, 312), (12, 314)];

        let mut whole = Splitter::default();
        let mut found = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let (used, ended) = whole.advance(&stream[at..]).unwrap();
            at += used;
            assert!(ended);
            found.push((whole.packet_type(), at));
        }
        assert_eq!(found, expected);

        let mut bytewise = Splitter::default();
        let mut found = Vec::new();
        for (i, byte) in stream.iter().enumerate() {
            let (used, ended) = bytewise.advance(std::slice::from_ref(byte)).unwrap();
            assert_eq!(used, 1);
            if ended {
                found.push((bytewise.packet_type(), i + 1));
            }
        }
        assert_eq!(found, expected);
        assert!(bytewise.at_boundary());
    }

    #[test]
    fn a_length_of_five_bytes_is_malformed() {
        let mut splitter = Splitter::default();
        assert_eq!(
            splitter.advance(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            Err(Malformed)
        );
    }

    /// The AUTH packet of §3.15: reason 0x19, then the method and data properties; read back
    /// by the same parser the link reads the broker's answer with.
    #[test]
    fn a_reauthentication_packet_is_as_mqtt_5_lays_it_out() {
        let packet = reauthenticate("K8S-SAT", b"tok");
        assert_eq!(
            packet,
            [
                0xF0, 18, 0x19, 16, 0x15, 0, 7, b'K', b'8', b'S', b'-', b'S', b'A', b'T', 0x16, 0,
                3, b't', b'o', b'k'
            ]
        );
        assert_eq!(read_auth(&packet).unwrap().reason, REAUTHENTICATE);
        assert_eq!(
            read_auth(&[0xF0, 0]).unwrap(),
            AuthAnswer {
                reason: AUTH_SUCCESS,
                reason_string: None
            }
        );
        let refused = [0xF0, 8, 0x87, 6, 0x1F, 0, 3, b'b', b'a', b'd'];
        assert_eq!(
            read_auth(&refused).unwrap(),
            AuthAnswer {
                reason: 0x87,
                reason_string: Some("bad".into())
            }
        );
        assert_eq!(connack_reason(&[0x20, 3, 0, 0x87, 0]), Some(0x87));
        assert_eq!(disconnect_reason(&[0xE0, 2, 0x87, 0]), Some(0x87));
        assert_eq!(disconnect_reason(&[0xE0, 0]), Some(0));
    }
}
