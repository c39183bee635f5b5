//! A bare WebSocket client over TCP that never answers pings (tungstenite
//! clients answer them whenever they read), to test heartbeat timeouts.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct RawClient {
    tcp: TcpStream,
    buf: Vec<u8>,
}

impl RawClient {
    /// Performs the handshake; panics unless the server answers 101.
    pub async fn connect(addr: SocketAddr, token: &str) -> RawClient {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "GET /ws?token={token} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut client = RawClient {
            tcp,
            buf: Vec::new(),
        };
        let head = loop {
            if let Some(pos) = client.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&client.buf[..pos]).to_string();
                client.buf.drain(..pos + 4);
                break head;
            }
            client.fill().await;
        };
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        client
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(super::WAIT, self.tcp.read(&mut chunk))
            .await
            .expect("data in time")
            .unwrap();
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// The next frame's opcode and payload (server frames are unmasked);
    /// `None` at end of stream.
    pub async fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 2 {
                let opcode = self.buf[0] & 0x0f;
                let len7 = (self.buf[1] & 0x7f) as usize;
                let (len, header) = match len7 {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&self.buf[2..10]);
                        (u64::from_be_bytes(b) as usize, 10)
                    }
                    126 | 127 => (usize::MAX, 0),
                    n => (n, 2),
                };
                if len != usize::MAX && self.buf.len() >= header + len {
                    let payload = self.buf[header..header + len].to_vec();
                    self.buf.drain(..header + len);
                    return Some((opcode, payload));
                }
            }
            if self.fill().await == 0 {
                return None;
            }
        }
    }

    /// Reads frames (without answering pings) until a close frame; returns
    /// its code and how many pings came before it.
    pub async fn close_code(&mut self) -> (u16, usize) {
        let mut pings = 0;
        while let Some((opcode, payload)) = self.frame().await {
            match opcode {
                0x9 => pings += 1,
                0x8 if payload.len() >= 2 => {
                    return (u16::from_be_bytes([payload[0], payload[1]]), pings)
                }
                0x8 => return (1005, pings),
                _ => {}
            }
        }
        (0, pings)
    }
}
