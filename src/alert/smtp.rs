//! Sending mail over SMTP with lettre (async, tokio): `[smtp]` host and port, TLS `none`,
//! `starttls` (required, not opportunistic) or `tls` (implicit TLS, usually port 465),
//! optional login, and a timeout for the connection and every command. A failed send is an
//! error for the caller to log and retry; nothing here remembers anything.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::SmtpSettings;

/// An SMTP client for the configured server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
    server: String,
}

impl Mailer {
    /// A client for `s`. Fails only if the TLS settings cannot be built.
    pub fn new(s: &SmtpSettings) -> Result<Mailer, String> {
        let tls = match s.tls.as_str() {
            "none" => Tls::None,
            "starttls" => Tls::Required(
                TlsParameters::new(s.host.clone()).map_err(|e| format!("smtp tls: {e}"))?,
            ),
            "tls" => Tls::Wrapper(
                TlsParameters::new(s.host.clone()).map_err(|e| format!("smtp tls: {e}"))?,
            ),
            other => {
                return Err(format!(
                    "smtp.tls must be none, starttls or tls, not '{other}'"
                ))
            }
        };
        let timeout = if s.timeout.is_zero() {
            Duration::from_secs(30)
        } else {
            s.timeout
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
            .port(s.port)
            .tls(tls)
            .timeout(Some(timeout));
        if !s.username.is_empty() {
            b = b.credentials(Credentials::new(s.username.clone(), s.password.clone()));
        }
        Ok(Mailer {
            transport: b.build(),
            timeout,
            server: format!("{}:{}", s.host, s.port),
        })
    }

    /// Sends `msg`; the error names the server and what failed. The whole exchange is
    /// bounded by four times the timeout.
    pub async fn send(&self, msg: Message) -> Result<(), String> {
        match tokio::time::timeout(self.timeout * 4, self.transport.send(msg)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("SMTP {}: {e}", self.server)),
            Err(_) => Err(format!(
                "SMTP {}: no answer within {:?}",
                self.server,
                self.timeout * 4
            )),
        }
    }
}
