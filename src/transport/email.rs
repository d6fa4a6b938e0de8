//! Email transport: one envelope per message, SMTP out, IMAP in.
//!
//! Each envelope goes as one MIME message: a fixed plain-text notice and the envelope as an
//! `application/octet-stream` attachment, with a [`GROUP_HEADER`] naming the group (the hex
//! of a [`GroupTag`]), so one mailbox can serve several groups and ordinary mail is left
//! alone. The mail servers store and relay the attachment (base64 of the ciphertext) and
//! nothing else about the document.
//!
//! Receiving searches the mailbox for unseen messages carrying this group's header, fetches
//! them without setting `\Seen` (`BODY.PEEK[]`), extracts the attachments and only then marks
//! the messages `\Seen`. A failure at any step leaves them unseen, so they are fetched again:
//! mail may arrive twice and in any order, and the replica's duplicate detection and causal
//! buffer absorb both. Nothing is deleted.
//!
//! # Crates, and why
//!
//! * `lettre` (SMTP only, `default-features = false`): the maintained Rust SMTP client. No
//!   TLS for loopback; `email-tls` adds rustls (SMTPS and STARTTLS).
//! * `mail-builder` / `mail-parser` 0.11 (Stalwart): build and parse MIME (mail-parser 1.x
//!   needs Rust 1.98).
//! * `imap` 3.0.0-alpha.15 (jonhoo/rust-imap), exactly pinned: the only blocking IMAP client
//!   on crates.io with a current parser (`imap-proto`). Its 3.0 line has stayed in alpha and
//!   the project is looking for maintainers; the maintained client, `async-imap` (chatmail),
//!   is async-only (an executor inside a blocking transport) and needs Rust 1.88, above this
//!   crate's 1.85. This module uses seven commands (LOGIN, SELECT, UID SEARCH, UID FETCH,
//!   UID STORE, LOGOUT, and the greeting), so replacing the crate later is contained here.
//!   The stream is ours (`TcpStream` with timeouts, or rustls over it with `email-tls`), not
//!   the crate's TLS, so one rustls is shared with lettre.
//!
//! # Bounds
//!
//! Sizes are asked for first (`RFC822.SIZE`); messages above [`MAX_MESSAGE_BYTES`] are
//! marked `\Seen` and skipped unread, and one [`EmailTransport::receive`] call fetches at most
//! [`MAX_FETCH_BYTES`] of messages (the rest come with the next call). Every socket has read
//! and write timeouts.

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Address, SmtpTransport, Transport};
use mail_builder::headers::raw::Raw;
use mail_builder::MessageBuilder;
use mail_parser::{MessageParser, MimeHeaders};
use thiserror::Error;

use crate::crypto::{GroupTag, MAX_ENVELOPE_CEILING};
use crate::transport::hex;

/// Header naming the group a message belongs to: lower-case hex of a [`GroupTag`].
pub const GROUP_HEADER: &str = "X-Sealdoc-Group";

/// MIME type of the envelope attachment.
pub const ATTACHMENT_TYPE: &str = "application/octet-stream";

/// File name of the envelope attachment.
pub const ATTACHMENT_NAME: &str = "sealdoc-envelope.bin";

/// Subject of every message (fixed: it must say nothing about the document).
pub const SUBJECT: &str = "sealdoc envelope";

/// Plain-text part of every message, for a human who opens one in a mail client.
pub const NOTICE: &str = "This message carries an end-to-end encrypted sealdoc envelope as \
                          an attachment. It is read by the sealdoc app; there is nothing \
                          to read here.\r\n";

/// Largest message fetched, in bytes.
///
/// The largest envelope is [`MAX_ENVELOPE_CEILING`] (1 MiB); base64 with line breaks makes
/// that about 1.37 MiB, plus headers. Anything above 2 MiB is not ours and is skipped unread.
pub const MAX_MESSAGE_BYTES: u32 = 2 * 1024 * 1024;

/// Most bytes of messages one [`EmailTransport::receive`] call fetches (the rest wait).
pub const MAX_FETCH_BYTES: u64 = 16 * 1024 * 1024;

/// Default timeout for connecting and for each read or write.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How SMTP is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmtpSecurity {
    /// Plain SMTP: only for a server on loopback (or an otherwise trusted link).
    Plain,
    /// STARTTLS on a submission port (587).
    #[cfg(feature = "email-tls")]
    StartTls,
    /// Implicit TLS (SMTPS, 465).
    #[cfg(feature = "email-tls")]
    Tls,
}

/// How IMAP is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImapSecurity {
    /// Plain IMAP: only for a server on loopback (the password is sent as is).
    Plain,
    /// Implicit TLS (IMAPS, 993).
    #[cfg(feature = "email-tls")]
    Tls,
}

/// Where the mail servers are, who we are, and whom we write to.
#[derive(Clone)]
#[non_exhaustive]
pub struct EmailConfig {
    /// SMTP server host name or address.
    pub smtp_host: String,
    /// SMTP port.
    pub smtp_port: u16,
    /// How SMTP is secured.
    pub smtp_security: SmtpSecurity,
    /// SMTP AUTH user and password, if the server wants them.
    pub smtp_login: Option<(String, String)>,
    /// IMAP server host name or address.
    pub imap_host: String,
    /// IMAP port.
    pub imap_port: u16,
    /// How IMAP is secured.
    pub imap_security: ImapSecurity,
    /// IMAP user.
    pub imap_user: String,
    /// IMAP password.
    pub imap_password: String,
    /// Mailbox to read (default `INBOX`).
    pub mailbox: String,
    /// Our address (the `From` of what we send).
    pub from: String,
    /// The other members' addresses.
    pub to: Vec<String>,
    /// The group's routing tag, sent in [`GROUP_HEADER`] and searched for on receipt. Use a
    /// static tag per group (not a per-epoch tag), or receipt will miss older epochs' mail.
    pub group: GroupTag,
    /// Timeout for connecting and for each read or write.
    pub timeout: Duration,
}

impl fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let EmailConfig {
            smtp_host,
            smtp_port,
            smtp_security,
            smtp_login,
            imap_host,
            imap_port,
            imap_security,
            imap_user,
            imap_password: _,
            mailbox,
            from,
            to,
            group,
            timeout,
        } = self;
        f.debug_struct("EmailConfig")
            .field(
                "smtp",
                &format_args!("{smtp_host}:{smtp_port} {smtp_security:?}"),
            )
            .field("smtp_user", &smtp_login.as_ref().map(|(u, _)| u))
            .field(
                "imap",
                &format_args!("{imap_host}:{imap_port} {imap_security:?}"),
            )
            .field("imap_user", imap_user)
            .field("mailbox", mailbox)
            .field("from", from)
            .field("to", to)
            .field("group", &hex(group.as_bytes()))
            .field("timeout", timeout)
            .finish_non_exhaustive()
    }
}

impl EmailConfig {
    /// A configuration for plain SMTP and IMAP on `localhost`'s default test ports (see
    /// `scripts/mail.sh`); set the servers with [`smtp`](Self::smtp) and
    /// [`imap`](Self::imap).
    #[must_use]
    pub fn new(from: impl Into<String>, to: Vec<String>, group: GroupTag) -> Self {
        EmailConfig {
            smtp_host: "127.0.0.1".into(),
            smtp_port: 12525,
            smtp_security: SmtpSecurity::Plain,
            smtp_login: None,
            imap_host: "127.0.0.1".into(),
            imap_port: 11143,
            imap_security: ImapSecurity::Plain,
            imap_user: String::new(),
            imap_password: String::new(),
            mailbox: "INBOX".into(),
            from: from.into(),
            to,
            group,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sets the SMTP server.
    #[must_use]
    pub fn smtp(mut self, host: impl Into<String>, port: u16, security: SmtpSecurity) -> Self {
        self.smtp_host = host.into();
        self.smtp_port = port;
        self.smtp_security = security;
        self
    }

    /// Sets the IMAP server and login.
    #[must_use]
    pub fn imap(
        mut self,
        host: impl Into<String>,
        port: u16,
        security: ImapSecurity,
        user: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.imap_host = host.into();
        self.imap_port = port;
        self.imap_security = security;
        self.imap_user = user.into();
        self.imap_password = password.into();
        self
    }
}

/// Why sending or receiving mail failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EmailError {
    /// An address in the configuration does not parse.
    #[error("invalid email address {0:?}")]
    BadAddress(String),
    /// The configuration names no recipient.
    #[error("no recipients configured")]
    NoRecipients,
    /// The envelope is larger than any envelope the library produces.
    #[error("envelope of {len} bytes exceeds the limit of {max}")]
    EnvelopeTooLarge {
        /// Its length.
        len: usize,
        /// [`MAX_ENVELOPE_CEILING`].
        max: usize,
    },
    /// The message could not be built.
    #[error("could not build the message: {0}")]
    Build(String),
    /// The SMTP server could not be reached or refused the message.
    #[error("SMTP send failed: {reason}")]
    Smtp {
        /// Whether trying again later may succeed (connection failure, timeout, 4xx reply).
        transient: bool,
        /// What lettre said.
        reason: String,
    },
    /// The IMAP server could not be reached.
    #[error("cannot reach the IMAP server at {addr}: {reason}")]
    ImapUnreachable {
        /// `host:port`.
        addr: String,
        /// What the network layer said.
        reason: String,
    },
    /// The IMAP server refused the login.
    #[error("IMAP login refused for {user}: {reason}")]
    ImapLogin {
        /// The user.
        user: String,
        /// The server's answer.
        reason: String,
    },
    /// An IMAP command failed.
    #[error("IMAP {command} failed: {reason}")]
    Imap {
        /// The command.
        command: &'static str,
        /// Whether trying again later may succeed (connection lost, timeout).
        transient: bool,
        /// What the server or the client library said.
        reason: String,
    },
    /// TLS could not be set up.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// A message with our group header that holds no usable envelope.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

impl EmailError {
    /// Whether trying again later may succeed: server down, timeout, temporary refusal.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            EmailError::Smtp { transient, .. } | EmailError::Imap { transient, .. } => *transient,
            EmailError::ImapUnreachable { .. } => true,
            _ => false,
        }
    }
}

/// Counters of what an [`EmailTransport`] did, for tests and monitoring.
#[derive(Debug, Default, Clone)]
#[non_exhaustive]
pub struct EmailStats {
    /// Messages handed to the SMTP server.
    pub messages_sent: u64,
    /// Messages fetched over IMAP.
    pub messages_fetched: u64,
    /// Envelopes extracted from fetched messages.
    pub envelopes_received: u64,
    /// Messages with our group header but no usable envelope (marked `\Seen`, skipped).
    pub malformed: u64,
    /// Messages above [`MAX_MESSAGE_BYTES`] (marked `\Seen`, skipped unread).
    pub oversized: u64,
    /// IMAP connections opened (a new one after every failure).
    pub imap_connects: u64,
}

/// Sends envelopes by SMTP and receives them by IMAP.
pub struct EmailTransport {
    config: EmailConfig,
    smtp: SmtpTransport,
    envelope: Envelope,
    tag: String,
    imap: Option<imap::Session<ImapStream>>,
    stats: EmailStats,
}

impl fmt::Debug for EmailTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailTransport")
            .field("config", &self.config)
            .field("imap_connected", &self.imap.is_some())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl EmailTransport {
    /// Checks the configuration; connects to nothing yet.
    ///
    /// # Errors
    ///
    /// [`EmailError::BadAddress`], [`EmailError::NoRecipients`], and [`EmailError::Smtp`] or
    /// [`EmailError::Tls`] if the TLS settings cannot be built.
    pub fn new(config: EmailConfig) -> Result<Self, EmailError> {
        let from: Address = config
            .from
            .parse()
            .map_err(|_| EmailError::BadAddress(config.from.clone()))?;
        let to = config
            .to
            .iter()
            .map(|a| a.parse().map_err(|_| EmailError::BadAddress(a.clone())))
            .collect::<Result<Vec<Address>, _>>()?;
        if to.is_empty() {
            return Err(EmailError::NoRecipients);
        }
        let envelope = Envelope::new(Some(from), to).map_err(|e| EmailError::Smtp {
            transient: false,
            reason: e.to_string(),
        })?;
        let builder = match config.smtp_security {
            SmtpSecurity::Plain => SmtpTransport::builder_dangerous(config.smtp_host.as_str()),
            #[cfg(feature = "email-tls")]
            SmtpSecurity::StartTls => SmtpTransport::starttls_relay(&config.smtp_host)
                .map_err(|e| EmailError::Tls(e.to_string()))?,
            #[cfg(feature = "email-tls")]
            SmtpSecurity::Tls => SmtpTransport::relay(&config.smtp_host)
                .map_err(|e| EmailError::Tls(e.to_string()))?,
        };
        let mut builder = builder.port(config.smtp_port).timeout(Some(config.timeout));
        if let Some((user, password)) = &config.smtp_login {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(EmailTransport {
            smtp: builder.build(),
            envelope,
            tag: hex(config.group.as_bytes()),
            config,
            imap: None,
            stats: EmailStats::default(),
        })
    }

    /// What this transport has done so far.
    #[must_use]
    pub fn stats(&self) -> &EmailStats {
        &self.stats
    }

    /// The MIME message that [`send`](Self::send) would send for `envelope`: the notice, the
    /// envelope as an attachment, [`GROUP_HEADER`], and a `Message-ID` derived from the
    /// envelope's hash (so a retry produces the same message).
    ///
    /// # Errors
    ///
    /// [`EmailError::EnvelopeTooLarge`], [`EmailError::Build`].
    pub fn compose(&self, envelope: &[u8]) -> Result<Vec<u8>, EmailError> {
        if envelope.len() > MAX_ENVELOPE_CEILING {
            return Err(EmailError::EnvelopeTooLarge {
                len: envelope.len(),
                max: MAX_ENVELOPE_CEILING,
            });
        }
        let digest = blake3::hash(envelope);
        let domain = self
            .config
            .from
            .rsplit_once('@')
            .map_or("sealdoc.invalid", |(_, d)| d);
        let message_id = format!("{}.{}@{domain}", hex(&digest.as_bytes()[..16]), &self.tag);
        MessageBuilder::new()
            .from(self.config.from.as_str())
            .to(self
                .config
                .to
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>())
            .subject(SUBJECT)
            .message_id(message_id)
            .header(GROUP_HEADER, Raw::new(self.tag.as_str()))
            .header("Auto-Submitted", Raw::new("auto-generated"))
            .text_body(NOTICE)
            .attachment(ATTACHMENT_TYPE, ATTACHMENT_NAME, envelope)
            .write_to_vec()
            .map_err(|e| EmailError::Build(e.to_string()))
    }

    /// Sends one envelope to every recipient, as one message.
    ///
    /// # Errors
    ///
    /// [`EmailError::EnvelopeTooLarge`], [`EmailError::Build`], and [`EmailError::Smtp`]
    /// (check [`EmailError::is_transient`]; resending after a failure may deliver twice,
    /// which receivers tolerate).
    pub fn send(&mut self, envelope: &[u8]) -> Result<(), EmailError> {
        let raw = self.compose(envelope)?;
        self.smtp
            .send_raw(&self.envelope, &raw)
            .map_err(|e| EmailError::Smtp {
                transient: smtp_transient(&e),
                reason: e.to_string(),
            })?;
        self.stats.messages_sent += 1;
        Ok(())
    }

    /// Fetches unseen messages of this group, returns their envelopes (oldest message first)
    /// and marks the messages `\Seen`. Reconnects after any earlier failure. Returns an empty
    /// list when there is nothing new; call again for more when it returned a full batch.
    ///
    /// # Errors
    ///
    /// [`EmailError::ImapUnreachable`], [`EmailError::ImapLogin`], [`EmailError::Imap`],
    /// [`EmailError::Tls`]. Messages are marked `\Seen` only after their envelopes were
    /// extracted, so after an error they are fetched again by the next call.
    pub fn receive(&mut self) -> Result<Vec<Vec<u8>>, EmailError> {
        let session = match self.imap.take() {
            Some(s) => s,
            None => {
                self.stats.imap_connects += 1;
                connect_imap(&self.config)?
            }
        };
        // On error the session is dropped here (closing the socket) and rebuilt next time.
        let (session, out) = self.receive_with(session)?;
        self.imap = Some(session);
        Ok(out)
    }

    /// Logs out of IMAP, if connected.
    pub fn close(&mut self) {
        if let Some(mut s) = self.imap.take() {
            let _ = s.logout();
        }
    }

    fn receive_with(
        &mut self,
        mut session: imap::Session<ImapStream>,
    ) -> Result<(imap::Session<ImapStream>, Vec<Vec<u8>>), EmailError> {
        // NOOP first: Dovecot answers commands on a selected mailbox from its last view and
        // rescans a Maildir only on a full sync, which SEARCH does not force (it upgrades a
        // quick sync to a full one only every 5 s); NOOP does. Without it new mail showed up
        // about 5 s late; with it, 10-20 ms after delivery.
        session.noop().map_err(|e| imap_err("NOOP", e))?;
        let query = format!("UNSEEN HEADER \"{GROUP_HEADER}\" \"{}\"", self.tag);
        let mut uids: Vec<u32> = session
            .uid_search(&query)
            .map_err(|e| imap_err("UID SEARCH", e))?
            .into_iter()
            .collect();
        if uids.is_empty() {
            return Ok((session, Vec::new()));
        }
        uids.sort_unstable();
        let sizes: HashMap<u32, u32> = session
            .uid_fetch(uid_set(&uids), "(UID RFC822.SIZE)")
            .map_err(|e| imap_err("UID FETCH (size)", e))?
            .iter()
            .filter_map(|f| Some((f.uid?, f.size?)))
            .collect();
        let mut handled = Vec::new();
        let mut take = Vec::new();
        let mut budget = 0u64;
        for uid in uids {
            let Some(&size) = sizes.get(&uid) else {
                continue; // expunged meanwhile
            };
            if size > MAX_MESSAGE_BYTES {
                self.stats.oversized += 1;
                handled.push(uid);
            } else if budget + u64::from(size) <= MAX_FETCH_BYTES {
                budget += u64::from(size);
                take.push(uid);
            }
        }
        let mut out = Vec::new();
        if !take.is_empty() {
            let fetches = session
                .uid_fetch(uid_set(&take), "(UID BODY.PEEK[])")
                .map_err(|e| imap_err("UID FETCH (body)", e))?;
            let mut bodies: Vec<(u32, &[u8])> = fetches
                .iter()
                .filter_map(|f| Some((f.uid?, f.body()?)))
                .collect();
            bodies.sort_unstable_by_key(|(uid, _)| *uid);
            for (uid, body) in bodies {
                self.stats.messages_fetched += 1;
                match extract_envelopes(body, &self.tag) {
                    Ok(envelopes) => {
                        self.stats.envelopes_received += envelopes.len() as u64;
                        out.extend(envelopes);
                    }
                    Err(_) => self.stats.malformed += 1,
                }
                handled.push(uid);
            }
        }
        if !handled.is_empty() {
            session
                .uid_store(uid_set(&handled), "+FLAGS.SILENT (\\Seen)")
                .map_err(|e| imap_err("UID STORE", e))?;
        }
        Ok((session, out))
    }
}

/// The envelopes in one raw message of group `tag_hex`: the contents of its
/// `application/octet-stream` attachments of at most [`MAX_ENVELOPE_CEILING`] bytes.
///
/// # Errors
///
/// [`EmailError::Malformed`] if the message does not parse, carries another group's header or
/// none, or holds no usable attachment.
pub fn extract_envelopes(raw: &[u8], tag_hex: &str) -> Result<Vec<Vec<u8>>, EmailError> {
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(EmailError::Malformed("not a MIME message"))?;
    match message.header_raw(GROUP_HEADER).map(str::trim) {
        Some(tag) if tag.eq_ignore_ascii_case(tag_hex) => {}
        _ => return Err(EmailError::Malformed("group header missing or different")),
    }
    let out: Vec<Vec<u8>> = message
        .attachments()
        .filter(|part| {
            part.content_type().is_some_and(|ct| {
                ct.ctype().eq_ignore_ascii_case("application")
                    && ct
                        .subtype()
                        .is_some_and(|s| s.eq_ignore_ascii_case("octet-stream"))
            })
        })
        .map(|part| part.contents())
        .filter(|c| !c.is_empty() && c.len() <= MAX_ENVELOPE_CEILING)
        .map(<[u8]>::to_vec)
        .collect();
    if out.is_empty() {
        return Err(EmailError::Malformed("no envelope attachment"));
    }
    Ok(out)
}

/// The socket under the IMAP session: plain, or TLS with `email-tls`.
enum ImapStream {
    Plain(TcpStream),
    #[cfg(feature = "email-tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for ImapStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ImapStream::Plain(s) => s.read(buf),
            #[cfg(feature = "email-tls")]
            ImapStream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for ImapStream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            ImapStream::Plain(s) => s.write(buf),
            #[cfg(feature = "email-tls")]
            ImapStream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            ImapStream::Plain(s) => s.flush(),
            #[cfg(feature = "email-tls")]
            ImapStream::Tls(s) => s.flush(),
        }
    }
}

fn connect_imap(config: &EmailConfig) -> Result<imap::Session<ImapStream>, EmailError> {
    let addr = format!("{}:{}", config.imap_host, config.imap_port);
    let unreachable = |reason: String| EmailError::ImapUnreachable {
        addr: addr.clone(),
        reason,
    };
    let sockaddr = (config.imap_host.as_str(), config.imap_port)
        .to_socket_addrs()
        .map_err(|e| unreachable(e.to_string()))?
        .next()
        .ok_or_else(|| unreachable("no address".into()))?;
    let tcp = TcpStream::connect_timeout(&sockaddr, config.timeout)
        .map_err(|e| unreachable(e.to_string()))?;
    // No Nagle: IMAP is request/response with small commands, and Nagle plus the server's
    // delayed ACK would add up to 40 ms to a command.
    tcp.set_read_timeout(Some(config.timeout))
        .and_then(|()| tcp.set_write_timeout(Some(config.timeout)))
        .and_then(|()| tcp.set_nodelay(true))
        .map_err(|e| unreachable(e.to_string()))?;
    let stream = match config.imap_security {
        ImapSecurity::Plain => ImapStream::Plain(tcp),
        #[cfg(feature = "email-tls")]
        ImapSecurity::Tls => ImapStream::Tls(Box::new(tls_stream(&config.imap_host, tcp)?)),
    };
    let mut client = imap::Client::new(stream);
    // Read once, right after `new`: the crate asserts the greeting is read only once.
    client
        .read_greeting()
        .map_err(|e| unreachable(format!("no IMAP greeting: {e}")))?;
    let mut session = client
        .login(&config.imap_user, &config.imap_password)
        .map_err(|(e, _)| match e {
            imap::Error::No(_) | imap::Error::Bad(_) => EmailError::ImapLogin {
                user: config.imap_user.clone(),
                reason: e.to_string(),
            },
            other => imap_err("LOGIN", other),
        })?;
    session
        .select(&config.mailbox)
        .map_err(|e| imap_err("SELECT", e))?;
    Ok(session)
}

#[cfg(feature = "email-tls")]
fn tls_stream(
    host: &str,
    tcp: TcpStream,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, EmailError> {
    use std::sync::Arc;
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| EmailError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| EmailError::Tls(e.to_string()))?;
    let conn = rustls::ClientConnection::new(Arc::new(config), name)
        .map_err(|e| EmailError::Tls(e.to_string()))?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

fn imap_err(command: &'static str, e: imap::Error) -> EmailError {
    let transient = matches!(
        e,
        imap::Error::Io(_) | imap::Error::ConnectionLost | imap::Error::Bye(_)
    );
    EmailError::Imap {
        command,
        transient,
        reason: e.to_string(),
    }
}

fn smtp_transient(e: &lettre::transport::smtp::Error) -> bool {
    if e.is_transient() || e.is_timeout() {
        return true;
    }
    if e.is_permanent() {
        return false;
    }
    // Connection refused or reset: an I/O error somewhere in the chain.
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// An IMAP sequence set for sorted `uids`, with runs collapsed (`1:3,7`).
fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport() -> EmailTransport {
        let config = EmailConfig::new(
            "alice@sealdoc.test",
            vec!["bob@sealdoc.test".into()],
            GroupTag::from_bytes([7; 16]),
        );
        EmailTransport::new(config).unwrap()
    }

    #[test]
    fn composed_message_round_trips_through_the_parser() {
        let t = transport();
        let envelope: Vec<u8> = (0..5000u32).map(|i| (i * 31 % 251) as u8).collect();
        let raw = t.compose(&envelope).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(text.contains(&format!("{GROUP_HEADER}: {}", hex(&[7; 16]))));
        assert!(text.contains(ATTACHMENT_TYPE));
        assert_eq!(
            extract_envelopes(&raw, &hex(&[7; 16])).unwrap(),
            vec![envelope]
        );
    }

    #[test]
    fn same_envelope_composes_the_same_message_id() {
        let t = transport();
        let id = |raw: Vec<u8>| {
            MessageParser::default()
                .parse(&raw)
                .and_then(|m| m.message_id().map(str::to_owned))
        };
        let a = id(t.compose(b"abc").unwrap());
        assert!(a.is_some());
        assert_eq!(a, id(t.compose(b"abc").unwrap()));
        assert_ne!(a, id(t.compose(b"abd").unwrap()));
    }

    #[test]
    fn another_groups_message_is_rejected() {
        let t = transport();
        let raw = t.compose(b"xyz").unwrap();
        assert!(matches!(
            extract_envelopes(&raw, &hex(&[8; 16])),
            Err(EmailError::Malformed(_))
        ));
        assert!(matches!(
            extract_envelopes(b"garbage", "00"),
            Err(EmailError::Malformed(_))
        ));
    }

    #[test]
    fn oversized_envelope_is_refused_before_sending() {
        let mut t = transport();
        assert!(matches!(
            t.send(&vec![0; MAX_ENVELOPE_CEILING + 1]),
            Err(EmailError::EnvelopeTooLarge { .. })
        ));
    }

    #[test]
    fn bad_addresses_are_typed_errors() {
        let config = EmailConfig::new("not an address", vec![], GroupTag::from_bytes([0; 16]));
        assert!(matches!(
            EmailTransport::new(config),
            Err(EmailError::BadAddress(_))
        ));
        let config = EmailConfig::new("a@b.test", vec![], GroupTag::from_bytes([0; 16]));
        assert!(matches!(
            EmailTransport::new(config),
            Err(EmailError::NoRecipients)
        ));
    }

    #[test]
    fn uid_sets_collapse_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(uid_set(&[4]), "4");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn unreachable_servers_are_transient_typed_errors() {
        let config = EmailConfig::new(
            "alice@sealdoc.test",
            vec!["bob@sealdoc.test".into()],
            GroupTag::from_bytes([1; 16]),
        )
        .smtp("127.0.0.1", 9, SmtpSecurity::Plain)
        .imap("127.0.0.1", 9, ImapSecurity::Plain, "u", "p");
        let mut t = EmailTransport::new(config).unwrap();
        let e = t.send(b"x").unwrap_err();
        assert!(e.is_transient(), "{e:?}");
        let e = t.receive().unwrap_err();
        assert!(e.is_transient(), "{e:?}");
    }
}
