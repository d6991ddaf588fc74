//! A scripted one-shot MQTT peer: it reads the CONNECT the driver sends, records its fields, and
//! answers a CONNACK with a chosen code. It shows what goes into CONNECT (credentials, protocol
//! level, keep alive, clean session) and how every refusal code is reported, which a real broker
//! shows only for the codes its own checks produce.

use std::{
    io::{Read, Write},
    net::TcpListener,
    sync::mpsc,
    time::Duration,
};

use super::support::PATIENCE;

/// The fields of a received CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Connect {
    pub level: u8,
    pub clean: bool,
    pub keep_alive: u16,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
}

/// Listens on a free port, answers the first CONNECT with `code` (a CONNACK return code for
/// MQTT 3.1.1, a reason code for MQTT 5), and reports the CONNECT. Returns the port.
pub fn refuse_with(code: u8) -> (u16, mpsc::Receiver<Connect>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake broker");
    let port = listener.local_addr().expect("address").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(PATIENCE));
        let Some(packet) = read_packet(&mut stream) else {
            return;
        };
        let Some(connect) = parse_connect(&packet) else {
            return;
        };
        let answer: &[u8] = if connect.level == 5 { &[0x20, 3, 0, code, 0] } else { &[0x20, 2, 0, code] };
        let _ = stream.write_all(answer);
        let _ = tx.send(connect);
        // Keep the socket open briefly so the client reads the CONNACK rather than a reset.
        std::thread::sleep(Duration::from_millis(200));
    });
    (port, rx)
}

/// Reads one MQTT packet and returns its body (after the fixed header).
fn read_packet(stream: &mut impl Read) -> Option<Vec<u8>> {
    let mut byte = [0u8; 1];
    stream.read_exact(&mut byte).ok()?;
    if byte[0] >> 4 != 1 {
        return None;
    }
    let (mut len, mut shift) = (0usize, 0);
    loop {
        stream.read_exact(&mut byte).ok()?;
        len |= usize::from(byte[0] & 0x7f) << shift;
        shift += 7;
        if byte[0] & 0x80 == 0 {
            break;
        }
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

fn parse_connect(body: &[u8]) -> Option<Connect> {
    let mut r = Reader { data: body, pos: 0 };
    let _protocol_name = r.bytes()?;
    let level = r.u8()?;
    let flags = r.u8()?;
    let keep_alive = r.u16()?;
    if level == 5 {
        let len = r.varint()?;
        r.pos += len;
    }
    let client_id = String::from_utf8(r.bytes()?.to_vec()).ok()?;
    if flags & 0x04 != 0 {
        if level == 5 {
            let len = r.varint()?;
            r.pos += len;
        }
        r.bytes()?;
        r.bytes()?;
    }
    let username = if flags & 0x80 != 0 { Some(String::from_utf8(r.bytes()?.to_vec()).ok()?) } else { None };
    let password = if flags & 0x40 != 0 { Some(r.bytes()?.to_vec()) } else { None };
    Some(Connect { level, clean: flags & 0x02 != 0, keep_alive, client_id, username, password })
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }
    fn bytes(&mut self) -> Option<&[u8]> {
        let len = usize::from(self.u16()?);
        let out = self.data.get(self.pos..self.pos + len)?;
        self.pos += len;
        Some(out)
    }
    fn varint(&mut self) -> Option<usize> {
        let (mut value, mut shift) = (0usize, 0);
        loop {
            let b = self.u8()?;
            value |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
    }
}
