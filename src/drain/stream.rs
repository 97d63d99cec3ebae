//! A TCP stream that [`OpenConnections`](super::OpenConnections) can end:
//! once its token is cancelled, reads see the end of the stream and writes
//! fail, so whoever serves it (hyper, or the WebSocket behind an upgrade)
//! finishes and drops it, which closes the socket.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::Registration;

#[derive(Debug)]
pub struct DrainableStream {
    tcp: TcpStream,
    /// Polled on every read, so a pending read wakes when ended; one per
    /// direction, as reads and writes may wait in different tasks (a future
    /// wakes only the task that polled it last).
    read_ended: Pin<Box<WaitForCancellationFutureOwned>>,
    write_ended: Pin<Box<WaitForCancellationFutureOwned>>,
    _registration: Registration,
}

impl DrainableStream {
    pub(super) fn new(tcp: TcpStream, end: CancellationToken, registration: Registration) -> Self {
        Self {
            tcp,
            read_ended: Box::pin(end.clone().cancelled_owned()),
            write_ended: Box::pin(end.cancelled_owned()),
            _registration: registration,
        }
    }
}

fn ended() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection closed by the drain")
}

impl AsyncRead for DrainableStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read_ended.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(())); // the end of the stream
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for DrainableStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.write_ended.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(ended()));
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.write_ended.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(ended()));
        }
        Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}
