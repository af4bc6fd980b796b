//! Sending mail over SMTP with lettre (async, tokio): `[smtp]` host and port, TLS `none`,
//! `starttls` (required, not opportunistic) or `tls` (implicit TLS, usually port 465),
//! optional login, and a timeout for the connection and every command. A failed send is an
//! error for the caller to log and retry; nothing here remembers anything.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{SmtpSettings, SmtpTls};

/// Why a mail did not go out, or the client could not be built. The text is what the log,
/// the alert history and the status page show, so it names the server.
#[derive(Debug, thiserror::Error)]
pub enum SmtpError {
    /// `[smtp].tls` is `starttls` or `tls` and rustls could not be set up for `[smtp].host`.
    #[error("smtp tls: {0}")]
    Tls(#[source] lettre::transport::smtp::Error),
    /// The server refused the connection, the login or the message.
    #[error("SMTP {server}: {source}")]
    Send {
        /// `host:port`.
        server: String,
        /// lettre's reason (includes the server's reply).
        source: lettre::transport::smtp::Error,
    },
    /// An envelope address is not an address (a stored notification that was edited).
    #[error("SMTP envelope: {0}")]
    Envelope(String),
    /// The whole exchange took longer than four times `[smtp].timeout`.
    #[error("SMTP {server}: no answer within {after:?}")]
    Timeout {
        /// `host:port`.
        server: String,
        /// The bound that passed.
        after: Duration,
    },
}

/// An SMTP client for the configured server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
    server: String,
}

impl Mailer {
    /// A client for `s`. Fails only if the TLS settings cannot be built.
    pub fn new(s: &SmtpSettings) -> Result<Mailer, SmtpError> {
        let tls = match s.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls => {
                Tls::Required(TlsParameters::new(s.host.clone()).map_err(SmtpError::Tls)?)
            }
            SmtpTls::Tls => {
                Tls::Wrapper(TlsParameters::new(s.host.clone()).map_err(SmtpError::Tls)?)
            }
        };
        let timeout = s.timeout;
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
            .port(s.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some(user) = &s.username {
            b = b.credentials(Credentials::new(user.clone(), s.password.clone()));
        }
        Ok(Mailer {
            transport: b.build(),
            timeout,
            server: format!("{}:{}", s.host, s.port),
        })
    }

    /// Sends a whole stored message `eml` from `from` to the envelope recipients `to` (the
    /// outbox's mail); the error names the server and
    /// what failed; the whole exchange is bounded by four times the timeout.
    pub async fn send_raw(&self, from: &str, to: &[String], eml: &[u8]) -> Result<(), SmtpError> {
        let parse = |a: &str| {
            a.parse::<lettre::message::Mailbox>()
                .map(|m| m.email)
                .map_err(|e| SmtpError::Envelope(format!("'{a}': {e}")))
        };
        let recipients = to.iter().map(|a| parse(a)).collect::<Result<Vec<_>, _>>()?;
        let envelope = lettre::address::Envelope::new(Some(parse(from)?), recipients)
            .map_err(|e| SmtpError::Envelope(e.to_string()))?;
        let after = self.timeout * 4;
        match tokio::time::timeout(after, self.transport.send_raw(&envelope, eml)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(SmtpError::Send {
                server: self.server.clone(),
                source,
            }),
            Err(_) => Err(SmtpError::Timeout {
                server: self.server.clone(),
                after,
            }),
        }
    }
}
