//! `--smtp-url`: where the HTML + text emails go, sent with notify's mailer (lettre).
//!
//! | URL | connection | default port |
//! |---|---|---|
//! | `smtp://[user[:password]@]host[:port]` | plain (a local relay or test server) | 25 |
//! | `smtp+starttls://…` | STARTTLS, required | 587 |
//! | `smtps://…` | TLS from the first byte | 465 |
//!
//! User and password are percent-decoded. A password in a URL shows in process listings: give
//! the URL through `TICKLAKE_SMTP_URL` (from a Secret), or leave the password out and set
//! `TICKLAKE_SMTP_PASSWORD`. Amazon SES's SMTP interface:
//! `smtp+starttls://<SMTP user>@email-smtp.<region>.amazonaws.com:587` with the SES SMTP
//! password.

use ticklake_notify::config::{SmtpConfig, SmtpTls};
use ticklake_notify::email::Mailer;

/// The environment variable with the SMTP password when the URL has none.
pub const PASSWORD_ENV: &str = "TICKLAKE_SMTP_PASSWORD";

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            let Some(v) = hex else { return Err(format!("bad percent-encoding in {s:?}")) };
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

/// The SMTP settings of a URL, and the password it carries.
pub fn parse_url(url: &str, from: &str, timeout_ms: u64) -> Result<(SmtpConfig, Option<String>), String> {
    let (scheme, rest) = url.split_once("://").ok_or("an SMTP URL is smtp://, smtp+starttls:// or smtps://…")?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "smtp" => SmtpTls::None,
        "smtp+starttls" => SmtpTls::Starttls,
        "smtps" => SmtpTls::Tls,
        other => return Err(format!("SMTP URL scheme {other:?}: use smtp, smtp+starttls or smtps")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("an IPv6 host needs its closing ]")?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("the SMTP URL has no host".into());
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| format!("SMTP port {p:?} is not a port"))?),
        None => None,
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((user, pass)) => (Some(percent_decode(user)?), Some(percent_decode(pass)?)),
            None => (Some(percent_decode(u)?), None),
        },
    };
    let config = SmtpConfig {
        host: host.to_string(),
        port,
        tls,
        from: from.to_string(),
        password_env: username.as_ref().map(|_| PASSWORD_ENV.to_string()),
        username,
        timeout_ms,
    };
    Ok((config, password))
}

/// The mailer for `--smtp-url` and `--from`; the password from the URL, else from
/// [`PASSWORD_ENV`] through `env`.
pub fn mailer(url: &str, from: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Mailer, String> {
    let (config, password) = parse_url(url, from, 30_000)?;
    let lookup = |name: &str| if name == PASSWORD_ENV { password.clone().or_else(|| env(name)) } else { env(name) };
    Mailer::new(&config, &lookup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_the_connection() {
        let (c, p) = parse_url("smtp://127.0.0.1:1025", "a@b.c", 5).unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.tls, c.username, p),
            ("127.0.0.1", Some(1025), SmtpTls::None, None, None)
        );
        assert_eq!(c.password_env, None);
        assert_eq!(c.from, "a@b.c");
        let (c, p) =
            parse_url("smtp+starttls://AKIA%2Fx:s%40cret@email-smtp.eu-west-1.amazonaws.com", "a@b.c", 5).unwrap();
        assert_eq!((c.host.as_str(), c.port(), c.tls), ("email-smtp.eu-west-1.amazonaws.com", 587, SmtpTls::Starttls));
        assert_eq!((c.username.as_deref(), p.as_deref()), (Some("AKIA/x"), Some("s@cret")));
        assert_eq!(c.password_env.as_deref(), Some(PASSWORD_ENV));
        let (c, p) = parse_url("SMTPS://user@[::1]:2465/", "a@b.c", 5).unwrap();
        assert_eq!((c.host.as_str(), c.port(), c.tls, p), ("::1", 2465, SmtpTls::Tls, None));
        assert_eq!(c.username.as_deref(), Some("user"));
        for (bad, why) in [
            ("127.0.0.1:25", "smtp://"),
            ("http://h", "scheme"),
            ("smtp://:25", "no host"),
            ("smtp://h:x", "not a port"),
            ("smtp://u%zz@h", "percent"),
            ("smtp://[::1", "closing"),
        ] {
            let e = parse_url(bad, "a@b.c", 5).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn mailers_need_a_from_address_and_find_the_password() {
        assert!(mailer("smtp://127.0.0.1:25", "not an address", &|_| None).err().unwrap().contains("smtp.from"));
        assert!(mailer("smtp://127.0.0.1:25", "ticklake <t@example.com>", &|_| None).is_ok());
        // A user without a password anywhere: refused at start, not at the first email.
        let e = mailer("smtp://u@127.0.0.1:25", "t@example.com", &|_| None).err().unwrap();
        assert!(e.contains(PASSWORD_ENV), "{e}");
        assert!(
            mailer("smtp://u@127.0.0.1:25", "t@example.com", &|n| (n == PASSWORD_ENV).then(|| "pw".into())).is_ok()
        );
        assert!(mailer("smtp://u:pw@127.0.0.1:25", "t@example.com", &|_| None).is_ok());
    }
}
