//! The server side of a TLS connection, driven through rustls' unbuffered
//! API with buffers this stream owns and drops whenever they are empty.
//!
//! rustls' buffered `ServerConnection` (what `tokio-rustls` drives) grows a
//! 4 KiB read buffer at a connection's first read and keeps it for the
//! connection's life: at 19,000 idle sockets that was a third of the
//! gateway's memory (BENCHMARKS.md, "Idle sockets"). Here an idle socket
//! holds rustls' connection state and no buffer at all.
//!
//! Reads and writes may come from two tasks (the session reads, its writer
//! writes). Each registers its own waker with the socket: the read side
//! never waits on the socket's write readiness (it sends what it queued,
//! such as a key update, with `try_write`, and whatever is left goes out
//! with the next write or flush), and plaintext that a write decrypts on
//! the way wakes the reader.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Waker};

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::io::poll_read_buf;

/// Room asked for in the receive buffer before each socket read.
const READ_CHUNK: usize = 4096;
/// The most received bytes held while a record or a handshake message is
/// incomplete: a record is at most ~16.7 KiB, and rustls refuses handshake
/// messages over 64 KiB.
const MAX_INCOMING: usize = 80 * 1024;
/// Plaintext taken per `poll_write`, so one call encrypts a bounded amount.
const MAX_WRITE: usize = 64 * 1024;
/// Encrypted bytes queued before `poll_write` waits for the socket.
const HIGH_WATER: usize = 64 * 1024;
/// Room for the header and tag of each 16 KiB record, a first guess when
/// encrypting (rustls says the exact size when the guess is short).
const RECORD_OVERHEAD: usize = 64;

/// A TLS server connection over a TCP stream.
pub struct TlsStream {
    tcp: TcpStream,
    conn: UnbufferedServerConnection,
    /// Received TLS bytes not yet processed (an incomplete record).
    incoming: Vec<u8>,
    /// Decrypted bytes not yet read, from `plain_at` on.
    plaintext: Vec<u8>,
    plain_at: usize,
    /// Encrypted bytes not yet sent, from `out_at` on.
    outgoing: Vec<u8>,
    out_at: usize,
    /// The peer sent close_notify, or the socket reached EOF.
    read_done: bool,
    /// Our close_notify is queued.
    close_queued: bool,
    /// The task waiting in `poll_read`, woken when a write decrypts data.
    reader: Option<Waker>,
}

/// Where processing the received records stopped.
enum Step {
    /// The handshake needs more bytes from the peer.
    NeedInput,
    /// Application data can be sent (and the data given was encrypted).
    Writable,
    /// Both sides sent close_notify.
    Closed,
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Appends what `encode` writes to `out`, growing it to the size rustls asks
/// for when the first guess is short.
fn append_with(
    out: &mut Vec<u8>,
    guess: usize,
    mut encode: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> io::Result<()> {
    let start = out.len();
    let mut size = guess;
    loop {
        out.resize(start + size, 0);
        match encode(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(Some(required)) if required > size => size = required,
            Err(_) => {
                out.truncate(start);
                return Err(io::Error::other("tls: could not encode a record"));
            }
        }
    }
}

fn encode_needs(e: EncodeError) -> Option<usize> {
    match e {
        EncodeError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

fn encrypt_needs(e: EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

/// Gives `payload` to the reader's buffer as far as it fits, the rest to
/// `spill`.
fn deliver(payload: &[u8], out: &mut Option<&mut ReadBuf<'_>>, spill: &mut Vec<u8>) {
    let taken = match out {
        Some(buf) if spill.is_empty() => {
            let n = buf.remaining().min(payload.len());
            buf.put_slice(&payload[..n]);
            n
        }
        _ => 0,
    };
    spill.extend_from_slice(&payload[taken..]);
}

impl TlsStream {
    /// Runs the handshake on `tcp` (the caller bounds its time).
    pub async fn accept(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<Self> {
        let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
        let mut stream = TlsStream {
            tcp,
            conn,
            incoming: Vec::new(),
            plaintext: Vec::new(),
            plain_at: 0,
            outgoing: Vec::new(),
            out_at: 0,
            read_done: false,
            close_queued: false,
            reader: None,
        };
        loop {
            let step = match stream.advance(None, None, false) {
                Ok(step) => step,
                Err(e) => {
                    stream.send_alert();
                    return Err(e);
                }
            };
            poll_fn(|cx| stream.poll_send(cx)).await?;
            match step {
                Step::Writable => return Ok(stream),
                Step::Closed => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "tls: closed during the handshake",
                    ))
                }
                Step::NeedInput => {
                    if poll_fn(|cx| stream.poll_fill(cx)).await? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "tls: eof during the handshake",
                        ));
                    }
                }
            }
        }
    }

    /// Bytes of buffer this stream holds (not counting rustls' own state).
    pub fn buffered_capacity(&self) -> usize {
        self.incoming.capacity() + self.plaintext.capacity() + self.outgoing.capacity()
    }

    /// Processes the received records until rustls needs input or allows
    /// application data: decrypted data goes to `out` and then to
    /// `plaintext`, handshake records to `outgoing`; `app` is encrypted once
    /// data may be sent, and a close_notify is queued when `close` is set.
    fn advance(
        &mut self,
        mut app: Option<&[u8]>,
        mut out: Option<&mut ReadBuf<'_>>,
        close: bool,
    ) -> io::Result<Step> {
        loop {
            let UnbufferedStatus { mut discard, state } =
                self.conn.process_tls_records(&mut self.incoming);
            let step = match state.map_err(tls_error)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(tls_error)?;
                        discard += record.discard;
                        deliver(record.payload, &mut out, &mut self.plaintext);
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    append_with(&mut self.outgoing, 1024, |buf| {
                        encode.encode(buf).map_err(encode_needs)
                    })?;
                    None
                }
                // The encoded records are in `outgoing`, which is sent in
                // order before anything queued later.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Step::NeedInput),
                ConnectionState::WriteTraffic(mut traffic) => {
                    if let Some(data) = app.take() {
                        let guess = data.len() + (data.len() / 16384 + 1) * RECORD_OVERHEAD;
                        append_with(&mut self.outgoing, guess, |buf| {
                            traffic.encrypt(data, buf).map_err(encrypt_needs)
                        })?;
                    }
                    if close && !self.close_queued {
                        append_with(&mut self.outgoing, RECORD_OVERHEAD, |buf| {
                            traffic.queue_close_notify(buf).map_err(encrypt_needs)
                        })?;
                        self.close_queued = true;
                    }
                    Some(Step::Writable)
                }
                ConnectionState::PeerClosed => {
                    self.read_done = true;
                    None
                }
                ConnectionState::Closed => {
                    self.read_done = true;
                    Some(Step::Closed)
                }
                ConnectionState::ReadEarlyData(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "tls: early data is not accepted",
                    ))
                }
                _ => return Err(io::Error::other("tls: unknown connection state")),
            };
            self.incoming.drain(..discard);
            if let Some(step) = step {
                return Ok(step);
            }
        }
    }

    /// Sends the alert rustls queues at a fatal error, as far as the socket
    /// takes it now: it tells the peer why (the socket closes either way).
    fn send_alert(&mut self) {
        for _ in 0..4 {
            match self.conn.process_tls_records(&mut []).state {
                Ok(ConnectionState::EncodeTlsData(mut encode)) => {
                    let queued = append_with(&mut self.outgoing, RECORD_OVERHEAD, |buf| {
                        encode.encode(buf).map_err(encode_needs)
                    });
                    if queued.is_err() {
                        break;
                    }
                }
                Ok(ConnectionState::TransmitTlsData(transmit)) => transmit.done(),
                _ => break,
            }
        }
        self.send_now();
    }

    /// Reads more TLS bytes from the socket; `Ok(0)` is EOF.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        if self.incoming.len() >= MAX_INCOMING {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "tls: record or handshake message too large",
            )));
        }
        // Through `AsyncRead` rather than `try_read_buf`: tokio clears the
        // socket's readiness when a read comes back shorter than the room
        // given, so the next read waits for epoll instead of asking the
        // kernel once more only to hear EAGAIN (one system call per frame).
        self.incoming.reserve(READ_CHUNK);
        poll_read_buf(Pin::new(&mut self.tcp), cx, &mut self.incoming)
    }

    /// Sends everything queued, then drops the emptied buffer.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_at < self.outgoing.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.outgoing[self.out_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_at += n;
        }
        self.outgoing = Vec::new();
        self.out_at = 0;
        Poll::Ready(Ok(()))
    }

    /// Sends what the socket takes now, without waiting (the read side's
    /// way to send, so it never takes the writer's place as the waiter).
    fn send_now(&mut self) {
        while self.out_at < self.outgoing.len() {
            match self.tcp.try_write(&self.outgoing[self.out_at..]) {
                Ok(n) if n > 0 => self.out_at += n,
                _ => return,
            }
        }
        self.outgoing = Vec::new();
        self.out_at = 0;
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.plain_at < this.plaintext.len() {
                let n = buf.remaining().min(this.plaintext.len() - this.plain_at);
                buf.put_slice(&this.plaintext[this.plain_at..this.plain_at + n]);
                this.plain_at += n;
                if this.plain_at == this.plaintext.len() {
                    this.plaintext = Vec::new();
                    this.plain_at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            let step = match this.advance(None, Some(buf), false) {
                Ok(step) => step,
                Err(e) => {
                    this.send_alert();
                    return Poll::Ready(Err(e));
                }
            };
            this.send_now();
            if buf.filled().len() > before || !this.plaintext.is_empty() {
                return Poll::Ready(Ok(()));
            }
            if this.read_done || matches!(step, Step::Closed) {
                return Poll::Ready(Ok(()));
            }
            match this.poll_fill(cx) {
                Poll::Ready(Ok(0)) => {
                    // EOF without close_notify: the end of the stream all
                    // the same (a WebSocket has its own close handshake).
                    this.read_done = true;
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if this.incoming.is_empty() {
                        this.incoming = Vec::new();
                    }
                    this.reader = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.outgoing.len() - this.out_at >= HIGH_WATER {
            ready!(this.poll_send(cx))?;
        }
        let data = &data[..data.len().min(MAX_WRITE)];
        let decrypted = this.plaintext.len();
        let step = this.advance(Some(data), None, false)?;
        if this.plaintext.len() > decrypted || this.read_done {
            if let Some(reader) = this.reader.take() {
                reader.wake();
            }
        }
        match step {
            Step::Writable => {
                // What the socket does not take now goes with the next
                // write or flush.
                if let Poll::Ready(Err(e)) = this.poll_send(cx) {
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(data.len()))
            }
            Step::NeedInput => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "tls: handshake not complete",
            ))),
            Step::Closed => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_send(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_queued {
            // A failed or unfinished connection just closes the socket.
            let _ = this.advance(None, None, true);
            this.close_queued = true;
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_rustls::client::TlsStream as ClientStream;

    use super::*;

    /// A server stream and a tokio-rustls client connected to it, with the
    /// client limited to `versions`.
    async fn pair(
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (TlsStream, ClientStream<TcpStream>) {
        let pem = crate::tls::self_signed().unwrap();
        let acceptor = crate::tls::acceptor(&pem).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem.cert_pem) {
            roots.add(cert.unwrap()).unwrap();
        }
        #[allow(deprecated)] // ring: see tls/mod.rs
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            acceptor.accept(tcp).await
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let client = tokio_rustls::TlsConnector::from(Arc::new(client))
            .connect(name, tcp)
            .await
            .unwrap();
        (server.await.unwrap().unwrap(), client)
    }

    /// Echoes everything through a small read buffer (so records are read
    /// in pieces) until the client closes, then closes too.
    async fn echo(mut server: TlsStream) {
        let mut buf = [0u8; 100];
        loop {
            let n = server.read(&mut buf).await.unwrap();
            if n == 0 {
                server.shutdown().await.unwrap();
                return;
            }
            server.write_all(&buf[..n]).await.unwrap();
            server.flush().await.unwrap();
        }
    }

    async fn round_trip(versions: &[&'static rustls::SupportedProtocolVersion]) {
        let (server, client) = pair(versions).await;
        let echo = tokio::spawn(echo(server));
        let (mut rd, mut wr) = tokio::io::split(client);
        // Bigger than a record and than the high-water mark, so records
        // span reads and writes wait for the socket.
        let sent: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let sent = sent.clone();
            tokio::spawn(async move {
                wr.write_all(b"hello").await.unwrap();
                wr.write_all(&sent).await.unwrap();
                wr.shutdown().await.unwrap();
            })
        };
        let mut got = Vec::new();
        rd.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(&got[..5], b"hello");
        assert!(got[5..] == sent[..], "echo differs");
        echo.await.unwrap();
    }

    #[tokio::test]
    async fn echoes_what_a_tls13_client_sends() {
        round_trip(&[&rustls::version::TLS13]).await;
    }

    #[tokio::test]
    async fn echoes_what_a_tls12_client_sends() {
        round_trip(&[&rustls::version::TLS12]).await;
    }

    #[tokio::test]
    async fn an_idle_stream_holds_no_buffer() {
        let (mut server, mut client) = pair(&[&rustls::version::TLS13]).await;
        client.write_all(&[7u8; 20_000]).await.unwrap();
        client.flush().await.unwrap();
        let mut got = vec![0u8; 20_000];
        server.read_exact(&mut got).await.unwrap();
        assert!(got.iter().all(|&b| b == 7));
        server.write_all(&[9u8; 20_000]).await.unwrap();
        server.flush().await.unwrap();
        client.read_exact(&mut got).await.unwrap();
        assert!(got.iter().all(|&b| b == 9));
        // A read with nothing to read: it waits on the socket, holding
        // nothing. (The timeout only ends a read that cannot finish.)
        let waiting = tokio::time::timeout(Duration::from_millis(50), server.read(&mut got)).await;
        assert!(waiting.is_err(), "nothing was sent, nothing is read");
        assert_eq!(server.buffered_capacity(), 0);
    }

    /// A read that takes everything the socket holds leaves the socket
    /// waiting for epoll: the next read costs no `recvfrom` that can only
    /// return EAGAIN.
    #[tokio::test]
    async fn a_read_that_drains_the_socket_waits_for_epoll() {
        let (mut server, mut client) = pair(&[&rustls::version::TLS13]).await;
        client.write_all(b"one frame").await.unwrap();
        client.flush().await.unwrap();
        let mut got = [0u8; 9];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"one frame");
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            server.tcp.poll_read_ready(&mut cx).is_pending(),
            "the socket still looks readable: the next read would hear EAGAIN"
        );
    }

    #[tokio::test]
    async fn close_notify_is_eof_both_ways() {
        let (mut server, mut client) = pair(&[&rustls::version::TLS13]).await;
        client.write_all(b"last words").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last words");
        server.write_all(b"bye").await.unwrap();
        server.shutdown().await.unwrap();
        let mut got = Vec::new();
        // tokio-rustls reports a missing close_notify as an error, so
        // Ok here means ours arrived.
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"bye");
    }

    /// The handshake's error when the client sends `bytes` (or, for
    /// `None`, hangs up at once).
    async fn failed_handshake(bytes: Option<&[u8]>) -> io::Error {
        let pem = crate::tls::self_signed().unwrap();
        let acceptor = crate::tls::acceptor(&pem).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut tcp = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        match bytes {
            Some(bytes) => tcp.write_all(bytes).await.unwrap(),
            None => tcp.shutdown().await.unwrap(),
        }
        let (accepted, _) = listener.accept().await.unwrap();
        let err = acceptor.accept(accepted).await.err().expect("no handshake");
        if bytes.is_some() {
            // rustls' alert reaches the client: a record of type 21.
            let mut first = [0u8; 1];
            let read = tcp.read(&mut first).await;
            assert!(
                matches!(read, Ok(1)) && first[0] == 21,
                "{read:?} {first:?}"
            );
        }
        err
    }

    #[tokio::test]
    async fn plaintext_http_fails_the_handshake() {
        let err = failed_handshake(Some(b"GET /ws HTTP/1.1\r\nHost: localhost\r\n\r\n")).await;
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    }

    #[tokio::test]
    async fn eof_mid_handshake_is_an_error() {
        let err = failed_handshake(None).await;
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    }
}
