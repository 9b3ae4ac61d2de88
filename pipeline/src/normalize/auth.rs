//! Classifies Linux authentication and account-management messages (sshd, sudo, su, Linux-PAM modules,
//! shadow-utils, systemd-logind) into ECS categories, actions, outcomes and entities.
//!
//! Attacker-controlled text (user names sent to sshd) appears inside these lines, so entity extraction
//! anchors on the trailing, sshd-generated part of a line (`… from IP port N`), never on the first match.

use std::net::IpAddr;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use sentra_schemas::{Category, Outcome};

use super::{before_byte, find_byte, split_byte};

/// What a message says, borrowing from the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classified<'a> {
    /// ECS `event.category`.
    pub category: Category,
    /// ECS `event.type`.
    pub event_type: &'static str,
    /// ECS `event.action`.
    pub action: &'static str,
    /// ECS `event.outcome`.
    pub outcome: Outcome,
    /// Acting / authenticating user.
    pub user: Option<&'a str>,
    /// The other account of the event: the account acted upon (account management, ECS
    /// `user.target.name`) or the account acted as (sudo's `USER=`, su's target, ECS `user.effective.name`).
    pub target_user: Option<&'a str>,
    /// Group acted upon.
    pub group: Option<&'a str>,
    /// Source address as logged: an IP address, or a host name when only a name was logged (validated
    /// either way, see [`valid_address`]).
    pub source_ip: Option<&'a str>,
    /// Source port.
    pub source_port: Option<u16>,
    /// Authentication method.
    pub auth_method: Option<&'a str>,
    /// Command run through sudo.
    pub command: Option<&'a str>,
}

impl<'a> Classified<'a> {
    fn new(
        category: Category,
        event_type: &'static str,
        action: &'static str,
        outcome: Outcome,
    ) -> Self {
        Self {
            category,
            event_type,
            action,
            outcome,
            ..Self::default()
        }
    }

    /// The classification of a line Sentra keeps but does not understand.
    pub fn unknown() -> Self {
        Self::new(Category::Unknown, "info", "unknown", Outcome::Unknown)
    }

    fn user(mut self, u: &'a str) -> Self {
        self.user = non_empty(u);
        self
    }

    fn target(mut self, u: &'a str) -> Self {
        self.target_user = non_empty(u);
        self
    }

    fn from(mut self, (ip, port): Endpoint<'a>) -> Self {
        self.source_ip = ip;
        self.source_port = port;
        self
    }
}

/// Classifies `message` logged by `program`; `None` when the line is not understood.
pub fn classify<'a>(program: &str, message: &'a str) -> Option<Classified<'a>> {
    if let Some(inner) = repeated(message) {
        return classify(program, inner);
    }
    if message.starts_with("pam_") {
        if let Some((module, rest)) = split_byte(message, b'(') {
            let (service, body) = rest.split_once("): ")?;
            let service = before_byte(service, b':');
            let via = if program.is_empty() { service } else { program };
            return pam_module(module, via, body);
        }
    }
    match program {
        "sshd" | "sshd-session" => sshd(message),
        "sudo" => sudo(message),
        "su" => su(message),
        "systemd-logind" => logind(message),
        "unix_chkpwd" => unix_chkpwd(message),
        "useradd" | "usermod" | "groupadd" | "userdel" | "groupdel" | "groupmod" | "gpasswd"
        | "passwd" | "chpasswd" | "chfn" | "chsh" => account(message),
        _ => None,
    }
}

/// The message rsyslog folded repeats of: `message repeated 5 times: [ Failed password for …]` → `Failed
/// password for …` (classified once: the line is one event).
#[inline]
fn repeated(message: &str) -> Option<&str> {
    // The first byte first: most messages start otherwise, and a string comparison costs a call.
    if message.as_bytes().first() != Some(&b'm') {
        return None;
    }
    let r = message.strip_prefix("message repeated ")?;
    let (_, inner) = r.split_once(" times: [ ")?;
    inner.strip_suffix(']')
}

/// Classifies a line whose tag names the module that wrote it for `program`, as older Linux-PAM did
/// (`sshd(pam_unix)[pid]: authentication failure; …`); `None` when the line is not understood.
pub fn classify_module<'a>(
    program: &str,
    module: &str,
    message: &'a str,
) -> Option<Classified<'a>> {
    let c = pam_module(module, program, message)?;
    Some(match (c.action, program) {
        // With the module in the tag, sshd's own `Failed password` line went to another file
        // (/var/log/secure): this line is the record of the failed SSH login.
        ("ssh_pam_auth_failure", _) => Classified {
            action: "ssh_login",
            ..c
        },
        _ => c,
    })
}

fn non_empty(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

/// A source address as sshd logs it: the IP (when valid) and the port (when given).
type Endpoint<'a> = (Option<&'a str>, Option<u16>);

/// `s` when it is a valid IPv4 or IPv6 address.
#[inline]
fn valid_ip(s: &str) -> Option<&str> {
    (is_ipv4(s.as_bytes()) || s.parse::<IpAddr>().is_ok()).then_some(s)
}

/// The longest host name DNS allows.
const MAX_HOST_NAME: usize = 253;

/// `s` when it is a valid IP address or host name: sshd (UseDNS) and PAM (`rhost=`) log the peer's name
/// when they resolved one. A name is letters, digits, `-`, `_` and `.`, at most 253 bytes, with a letter
/// somewhere (a mangled address is not a name); `UNKNOWN` (sshd's placeholder) and PAM's `?` are not
/// sources.
#[inline]
pub fn valid_address(s: &str) -> Option<&str> {
    valid_ip(s).or_else(|| valid_host_name(s))
}

/// `s` when it is a host name by the rules of [`valid_address`].
fn valid_host_name(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let shaped = !b.is_empty()
        && b.len() <= MAX_HOST_NAME
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b.iter().any(u8::is_ascii_alphabetic)
        && !matches!(b[0], b'-' | b'.')
        && !s.contains("..");
    (shaped && !s.eq_ignore_ascii_case("unknown")).then_some(s)
}

/// Whether `s` is a dotted-quad IPv4 address as [`std::net::Ipv4Addr`] parses it (four decimal octets of
/// at most 255, no leading zeros), checked without the general parser: most lines carry one.
fn is_ipv4(s: &[u8]) -> bool {
    let mut parts = 0;
    for part in s.split(|&b| b == b'.') {
        parts += 1;
        let ok = match *part {
            [a] => a.is_ascii_digit(),
            [b'1'..=b'9', b] => b.is_ascii_digit(),
            [a @ b'1'..=b'9', b, c] => {
                b.is_ascii_digit() && c.is_ascii_digit() && (a, b, c) <= (b'2', b'5', b'5')
            }
            _ => false,
        };
        if !ok || parts > 4 {
            return false;
        }
    }
    parts == 4
}

/// Where the last ` from ` of `s` starts. Found from its `m`, which `memrchr` reaches in one step on sshd's
/// tails (`from IP port N ssh2` has no other `m`); a general reverse searcher cost ten times as much.
fn rfind_from(s: &[u8]) -> Option<usize> {
    memchr::memrchr_iter(b'm', s)
        .find(|&m| m >= 4 && s[m - 4..].starts_with(b" from "))
        .map(|m| m - 4)
}

/// Searcher built once: building one per line cost as much as the search.
static FIRST_FOR: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(" for "));

/// Splits `"… from IP[ port N][ rest]"` at the last ` from `: (text before, (ip, port)).
fn split_from(s: &str) -> Option<(&str, Endpoint<'_>)> {
    let at = rfind_from(s.as_bytes())?;
    Some((&s[..at], ip_port(&s[at + 6..])))
}

/// Parses `ADDRESS[ port N]…` (anything after is ignored); the address must be a valid IP or host name.
fn ip_port(s: &str) -> Endpoint<'_> {
    let (ip, rest) = split_byte(s, b' ').unwrap_or((s, ""));
    // Older sshd wrote `Received disconnect from A: 11: …`, the address followed by a colon.
    let ip = valid_address(ip).or_else(|| ip.strip_suffix(':').and_then(valid_address));
    let port = rest.strip_prefix("port ").and_then(|p| {
        let digits = p.bytes().take_while(u8::is_ascii_digit).count();
        p[..digits].parse().ok()
    });
    (ip, port)
}

/// Strips the `invalid user ` / `authenticating user ` / `user ` qualifiers sshd puts before a name.
fn strip_user_qualifier(s: &str) -> &str {
    for q in [
        "invalid user ",
        "authenticating user ",
        "illegal user ",
        "user ",
    ] {
        if let Some(rest) = s.strip_prefix(q) {
            return rest;
        }
    }
    s
}

/// `[qualifier ]NAME IP port N…` (sshd's disconnect/closed format, no `from`): the name is everything
/// before the last space-separated IP that is followed by ` port `.
fn user_ip_port(s: &str) -> Option<(&str, Endpoint<'_>)> {
    let at = s.rfind(" port ")?;
    let head = &s[..at];
    let (name, ip) = head.rsplit_once(' ').unwrap_or(("", head));
    Some((strip_user_qualifier(name), ip_port(&s[at - ip.len()..])))
}

fn sshd(m: &str) -> Option<Classified<'_>> {
    use Category::*;
    use Outcome::*;
    if let Some(r) = m
        .strip_prefix("Failed ")
        .or_else(|| m.strip_prefix("Accepted "))
    {
        let success = m.starts_with('A');
        let at = FIRST_FOR.find(r.as_bytes())?;
        let (method, rest) = (&r[..at], &r[at + 5..]);
        let (who, from) = split_from(rest)?;
        let outcome = if success { Success } else { Failure };
        let event_type = if success { "start" } else { "info" };
        let mut c = Classified::new(Authentication, event_type, "ssh_login", outcome).from(from);
        c.auth_method = Some(method);
        if let Some(invalid) = who.strip_prefix("invalid user ") {
            c.action = "ssh_invalid_user_login";
            return Some(c.user(invalid));
        }
        return Some(c.user(who));
    }
    if let Some(r) = m
        .strip_prefix("Invalid user ")
        .or_else(|| m.strip_prefix("Illegal user "))
    {
        let c = Classified::new(Authentication, "info", "ssh_invalid_user", Failure);
        return Some(match split_from(r) {
            Some((who, from)) => c.user(who).from(from),
            None => c.user(r),
        });
    }
    // sshd writes some messages through error() or fatal(), which prefix them.
    let m = m
        .strip_prefix("error: ")
        .or_else(|| m.strip_prefix("fatal: "))
        .unwrap_or(m);
    if let Some(r) = m.strip_prefix("maximum authentication attempts exceeded for ") {
        let (who, from) = split_from(r)?;
        let c = Classified::new(Authentication, "info", "ssh_max_auth_attempts", Failure);
        return Some(c.user(strip_user_qualifier(who)).from(from));
    }
    if let Some(r) = m.strip_prefix("Disconnecting ") {
        if r.contains(": Too many authentication failures") {
            let (who, from) = user_ip_port(r.split(": Too many").next()?)?;
            let c = Classified::new(Authentication, "info", "ssh_max_auth_attempts", Failure);
            return Some(c.user(who).from(from));
        }
    }
    if let Some(r) = m.strip_prefix("Disconnecting: Too many authentication failures for ") {
        // OpenSSH 6-7: "Disconnecting: Too many authentication failures for root [preauth]"
        let who = r.strip_suffix(" [preauth]").unwrap_or(r);
        let c = Classified::new(Authentication, "info", "ssh_max_auth_attempts", Failure);
        return Some(c.user(strip_user_qualifier(who)));
    }
    if let Some(r) = m.strip_prefix("User ") {
        if let Some(at) = r.find(" not allowed because ") {
            let who_from = &r[..at];
            let c = Classified::new(Authentication, "info", "ssh_login_not_allowed", Failure);
            return Some(match split_from(who_from) {
                Some((who, from)) => c.user(who).from(from),
                None => c.user(who_from),
            });
        }
    }
    if let Some(r) = m.strip_prefix("ROOT LOGIN REFUSED FROM ") {
        let c =
            Classified::new(Authentication, "info", "ssh_login_not_allowed", Failure).user("root");
        return Some(c.from(ip_port(r)));
    }
    if let Some(r) = m.strip_prefix("Received disconnect from ") {
        let (ip, port) = ip_port(r);
        let port = port.or_else(|| {
            let p = r.split_once(" port ")?.1;
            before_byte(p, b':').parse().ok()
        });
        return Some(
            Classified::new(Session, "end", "ssh_disconnect", Outcome::Unknown).from((ip, port)),
        );
    }
    for (prefix, action) in [
        ("Disconnected from ", "ssh_disconnect"),
        ("Connection closed by ", "ssh_connection_closed"),
        ("Connection reset by ", "ssh_connection_closed"),
    ] {
        if let Some(r) = m.strip_prefix(prefix) {
            let c = Classified::new(Session, "end", action, Outcome::Unknown);
            return Some(match user_ip_port(r) {
                Some((who, from)) => c.user(who).from(from),
                None => c.from(ip_port(r)),
            });
        }
    }
    if let Some(r) = m.strip_prefix("PAM ") {
        if r.contains("more authentication failure") {
            let c = Classified::new(Authentication, "info", "ssh_auth_failures_summary", Failure);
            return Some(
                c.user(kv(r, "user=").unwrap_or(""))
                    .from((kv(r, "rhost=").and_then(valid_address), None)),
            );
        }
    }
    if let Some(r) = m.strip_prefix("PAM: ") {
        return sshd_pam_error(r);
    }
    sshd_connection(m)
}

/// sshd's `error: PAM: …` lines, after `PAM: `: `Authentication failure for [illegal user ]U from H`,
/// `User not known to the underlying authentication module for illegal user U from H`.
fn sshd_pam_error(r: &str) -> Option<Classified<'_>> {
    use Category::Authentication;
    use Outcome::Failure;
    for (prefix, action) in [
        ("Authentication failure for ", "ssh_pam_auth_failure"),
        (
            "User not known to the underlying authentication module for ",
            "ssh_pam_user_unknown",
        ),
    ] {
        if let Some(r) = r.strip_prefix(prefix) {
            let (who, from) = split_from(r)?;
            let c = Classified::new(Authentication, "info", action, Failure);
            return Some(c.user(strip_user_qualifier(who)).from(from));
        }
    }
    None
}

/// sshd's messages about a connection rather than an account: identification and key exchange failures,
/// reverse-mapping checks, subsystem requests.
fn sshd_connection(m: &str) -> Option<Classified<'_>> {
    use Category::{Network, Session};
    use Outcome::*;
    if let Some(r) = m.strip_prefix("Unable to negotiate with ") {
        let c = Classified::new(Network, "connection", "ssh_negotiation_failed", Failure);
        return Some(c.from(ip_port(before_byte(r, b':'))));
    }
    if let Some(r) = m
        .strip_prefix("Did not receive identification string from ")
        .or_else(|| m.strip_prefix("banner exchange: Connection from "))
    {
        let c = Classified::new(Network, "connection", "ssh_identification_failed", Failure);
        return Some(c.from(ip_port(before_byte(r, b':'))));
    }
    if m.starts_with("kex_exchange_identification: ") {
        // The address follows on sshd's next line (`Connection closed by A port P`).
        return Some(Classified::new(
            Network,
            "connection",
            "ssh_identification_failed",
            Failure,
        ));
    }
    if let Some(r) = m.strip_prefix("reverse mapping checking getaddrinfo for ") {
        // "NAME [A] failed - POSSIBLE BREAK-IN ATTEMPT!": the address sshd connected from is A.
        let (_, r) = r.rsplit_once(" [")?;
        let ip = valid_ip(before_byte(r, b']'));
        let c = Classified::new(Network, "info", "ssh_reverse_mapping_failed", Failure);
        return Some(c.from((ip, None)));
    }
    if let Some(r) = m.strip_prefix("Address ") {
        // "A maps to NAME, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!"
        let (ip, rest) = split_byte(r, b' ')?;
        if rest.starts_with("maps to ") && rest.ends_with("POSSIBLE BREAK-IN ATTEMPT!") {
            let c = Classified::new(Network, "info", "ssh_reverse_mapping_failed", Failure);
            return Some(c.from((valid_ip(ip), None)));
        }
    }
    if let Some(r) = m.strip_prefix("subsystem request for ") {
        // "sftp by user alice" / "sftp by user alice failed, subsystem not found"
        let (_, r) = r.rsplit_once(" by user ")?;
        let (user, outcome) = match r.strip_suffix(" failed, subsystem not found") {
            Some(u) => (u, Failure),
            None => (r, Success),
        };
        return Some(
            Classified::new(Session, "start", "ssh_subsystem_request", outcome).user(user),
        );
    }
    None
}

/// The value of `key` (e.g. `user=`) in a `k=v k=v` list: up to the next space (empty if none).
fn kv<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let mut search = 0;
    while let Some(i) = s[search..].find(key) {
        let at = search + i;
        if at == 0 || s.as_bytes()[at - 1] == b' ' {
            let v = &s[at + key.len()..];
            return Some(before_byte(v, b' '));
        }
        search = at + key.len();
    }
    None
}

/// `name(uid=N)` or `name` → `name`.
fn strip_uid(s: &str) -> &str {
    before_byte(s, b'(')
}

/// The action of a PAM authentication failure for the service (`sshd`, `sudo`, `su`, …) that asked.
fn pam_failure_action(via: &str) -> &'static str {
    match via {
        "sudo" => "sudo_auth_failure",
        "su" | "su-l" => "su_auth_failure",
        "sshd" | "sshd-session" => "ssh_pam_auth_failure",
        _ => "pam_auth_failure",
    }
}

/// A message of the Linux-PAM `module` (`pam_unix`, `pam_sss`, `pam_faillock`, `pam_succeed_if`, …) for the
/// service `via`.
fn pam_module<'a>(module: &str, via: &str, rest: &'a str) -> Option<Classified<'a>> {
    use Category::*;
    use Outcome::*;
    if let Some(r) = rest.strip_prefix("authentication failure;") {
        return Some(pam_auth_failure(via, r));
    }
    match module {
        "pam_unix" => pam_unix(via, rest),
        "pam_sss" => {
            // "received for user alice: 7 (Authentication failure)"
            let r = rest.strip_prefix("received for user ")?;
            let (user, result) = r.rsplit_once(": ")?;
            let code = before_byte(result, b' ');
            let action = match code {
                "7" => pam_failure_action(via),
                "10" => "pam_user_unknown",
                _ => "pam_auth_error",
            };
            Some(Classified::new(Authentication, "info", action, Failure).user(user))
        }
        "pam_faillock" => {
            // "Consecutive login failures for user alice account temporarily locked"
            let r = rest.strip_prefix("Consecutive login failures for user ")?;
            let user = r.strip_suffix(" account temporarily locked")?;
            Some(Classified::new(Iam, "change", "account_locked", Success).target(user))
        }
        "pam_succeed_if" => {
            // `requirement "uid >= 1000" not met by user "root"`
            // The requirement is the administrator's; the user name, last, may hold anything.
            let r = rest.strip_prefix("requirement ")?;
            let (_, user) = r.split_once(" not met by user ")?;
            let user = user.strip_prefix('"')?.strip_suffix('"')?;
            Some(
                Classified::new(Authentication, "info", "pam_requirement_not_met", Failure)
                    .user(user),
            )
        }
        _ => user_does_not_exist(rest),
    }
}

/// `authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=HOST  user=NAME`: `ruser` (or
/// `logname`), when given and different, is the acting user and `user` the account it tried to become.
fn pam_auth_failure<'a>(via: &str, r: &'a str) -> Classified<'a> {
    let mut c = Classified::new(
        Category::Authentication,
        "info",
        pam_failure_action(via),
        Outcome::Failure,
    );
    // `user=` is the last field and holds what the client sent, spaces included: the rest of the line.
    let user = r.find(" user=").map_or("", |at| r[at + 6..].trim_end());
    let actor = kv(r, "ruser=")
        .filter(|u| !u.is_empty())
        .or_else(|| kv(r, "logname="))
        .unwrap_or("");
    c = if !actor.is_empty() && actor != user {
        c.user(actor).target(user)
    } else {
        c.user(user)
    };
    c.source_ip = kv(r, "rhost=").and_then(valid_address);
    c
}

/// `… user "NAME" does not exist[ in /etc/passwd]` (PAM modules when the account is unknown). The name
/// runs from the first `user "` to the last `" does not exist`: the text around it is the module's.
fn user_does_not_exist(rest: &str) -> Option<Classified<'_>> {
    let r = &rest[rest.find("user \"")? + 6..];
    let user = &r[..r.rfind("\" does not exist")?];
    Some(
        Classified::new(
            Category::Authentication,
            "info",
            "pam_user_unknown",
            Outcome::Failure,
        )
        .user(user),
    )
}

fn pam_unix<'a>(via: &str, rest: &'a str) -> Option<Classified<'a>> {
    use Category::*;
    use Outcome::*;
    if let Some(r) = rest.strip_prefix("session opened for user ") {
        let (target, by) = r.split_once(" by ").unwrap_or((r, ""));
        let (target, by) = (strip_uid(target), strip_uid(by));
        // `by LOGIN(uid=0)`: login(1) names itself, not an account.
        let by = if by == "LOGIN" { "" } else { by };
        let c = Classified::new(Session, "start", "session_opened", Success);
        return Some(if by.is_empty() || by == target {
            c.user(target)
        } else {
            c.user(by).target(target)
        });
    }
    if let Some(r) = rest.strip_prefix("session closed for user ") {
        return Some(Classified::new(Session, "end", "session_closed", Success).user(strip_uid(r)));
    }
    if let Some(r) = rest.strip_prefix("password changed for ") {
        return Some(Classified::new(Iam, "change", "password_changed", Success).target(r));
    }
    if rest.starts_with("new password not acceptable") {
        return Some(Classified::new(
            Iam,
            "change",
            "password_change_rejected",
            Failure,
        ));
    }
    if rest.starts_with("check pass; user unknown")
        || rest.starts_with("auth could not identify password")
    {
        let action = if via == "sudo" {
            "sudo_auth_failure"
        } else {
            "pam_auth_failure"
        };
        return Some(Classified::new(Authentication, "info", action, Failure));
    }
    user_does_not_exist(rest)
}

/// unix_chkpwd, pam_unix's helper: `password check failed for user (alice)`.
fn unix_chkpwd(m: &str) -> Option<Classified<'_>> {
    let user = m
        .strip_prefix("password check failed for user (")?
        .strip_suffix(')')?;
    Some(
        Classified::new(
            Category::Authentication,
            "info",
            "password_check_failed",
            Outcome::Failure,
        )
        .user(user),
    )
}

/// systemd-logind: `New session 5 of user alice.`, `Removed session 5.`, `Session 5 logged out. …`.
fn logind(m: &str) -> Option<Classified<'_>> {
    use Category::Session;
    use Outcome::Success;
    if let Some(r) = m.strip_prefix("New session ") {
        let (_, user) = r.split_once(" of user ")?;
        let user = user.strip_suffix('.').unwrap_or(user);
        return Some(
            Classified::new(Session, "start", "logind_session_started", Success).user(user),
        );
    }
    if m.starts_with("Removed session ") {
        return Some(Classified::new(
            Session,
            "end",
            "logind_session_removed",
            Success,
        ));
    }
    if m.starts_with("Session ") && m.contains(" logged out.") {
        return Some(Classified::new(
            Session,
            "end",
            "logind_session_logged_out",
            Success,
        ));
    }
    None
}

fn sudo(m: &str) -> Option<Classified<'_>> {
    use Category::*;
    use Outcome::*;
    let (user, rest) = m.trim_start().split_once(" : ")?;
    let (fields, command) = match rest.split_once("COMMAND=") {
        Some((f, c)) => (f, Some(c)),
        None => (rest, None),
    };
    let target = fields
        .split(" ; ")
        .find_map(|f| f.strip_prefix("USER="))
        .unwrap_or("root");
    let first = fields.split(" ; ").next().unwrap_or("");
    let (category, event_type, action, outcome) =
        if first.starts_with("TTY=") || first.starts_with("PWD=") {
            (Process, "start", "sudo_command", Success)
        } else if first.contains("incorrect password attempt") {
            (Authentication, "info", "sudo_incorrect_password", Failure)
        } else if first.contains("NOT in sudoers") {
            (Authentication, "info", "sudo_not_in_sudoers", Failure)
        } else if first.contains("command not allowed") {
            (Authentication, "info", "sudo_command_not_allowed", Failure)
        } else if first.contains("a password is required") {
            (Authentication, "info", "sudo_auth_failure", Failure)
        } else {
            return None;
        };
    let mut c = Classified::new(category, event_type, action, outcome)
        .user(user)
        .target(target);
    c.command = command.and_then(non_empty);
    Some(c)
}

fn su(m: &str) -> Option<Classified<'_>> {
    use Category::*;
    use Outcome::*;
    // "(to root) alice on pts/0" / "FAILED SU (to root) alice on pts/0"
    let (failed, r) = match m.strip_prefix("FAILED SU ") {
        Some(r) => (true, r),
        None => (false, m),
    };
    if let Some(r) = r.strip_prefix("(to ") {
        let (target, rest) = r.split_once(") ")?;
        let user = rest.split(" on ").next().unwrap_or(rest);
        let c = if failed {
            Classified::new(Authentication, "info", "su_failure", Failure)
        } else {
            Classified::new(Authentication, "start", "su_success", Success)
        };
        return Some(c.user(user).target(target));
    }
    // older: "+ pts/0 alice:root" / "- pts/0 alice:root"
    let (ok, r) = match (m.strip_prefix("+ "), m.strip_prefix("- ")) {
        (Some(r), _) => (true, r),
        (_, Some(r)) => (false, r),
        _ => return None,
    };
    let (user, target) = split_byte(split_byte(r, b' ')?.1, b':')?;
    let c = if ok {
        Classified::new(Authentication, "start", "su_success", Success)
    } else {
        Classified::new(Authentication, "info", "su_failure", Failure)
    };
    Some(c.user(user).target(target))
}

/// `name=VALUE,` from useradd/groupadd's `k=v, k=v` lists.
fn comma_kv<'a>(s: &'a str, key: &str) -> Option<&'a str> {
    let v = &s[s.find(key)? + key.len()..];
    Some(before_byte(v, b','))
}

/// The text between the first pair of single quotes after `after`.
fn quoted<'a>(s: &'a str, after: &str) -> Option<&'a str> {
    let r = &s[s.find(after)? + after.len()..];
    let r = r.strip_prefix('\'')?;
    Some(&r[..find_byte(r, b'\'')?])
}

fn account(m: &str) -> Option<Classified<'_>> {
    use Category::Iam;
    use Outcome::*;
    if let Some(r) = m.strip_prefix("new user: ") {
        return Some(
            Classified::new(Iam, "creation", "user_created", Success).target(comma_kv(r, "name=")?),
        );
    }
    if let Some(r) = m.strip_prefix("new group: ") {
        let mut c = Classified::new(Iam, "creation", "group_created", Success);
        c.group = non_empty(comma_kv(r, "name=")?);
        return Some(c);
    }
    // groupadd logs one group three times (/etc/group, /etc/gshadow, then `new group:`); every version
    // writes the `new group:` line, the one counted.
    for (file, action) in [
        ("group added to /etc/group", "group_file_updated"),
        ("group added to /etc/gshadow", "group_shadow_updated"),
    ] {
        if m.starts_with(file) {
            let mut c = Classified::new(Iam, "info", action, Success);
            c.group = comma_kv(m, "name=").and_then(non_empty);
            return Some(c);
        }
    }
    if let Some(r) = m.strip_prefix("add '") {
        // "add 'bob' to group 'sudo'" / "add 'bob' to shadow group 'sudo'"
        let (user, rest) = r.split_once('\'')?;
        let shadow = rest.starts_with(" to shadow group");
        let action = if shadow {
            "user_added_to_shadow_group"
        } else {
            "user_added_to_group"
        };
        let mut c = Classified::new(Iam, "change", action, Success).target(user);
        c.group = quoted(rest, "group ").and_then(non_empty);
        return Some(c);
    }
    if let Some(r) = m.strip_prefix("delete '") {
        // "delete 'bob' from group 'sudo'" / "delete 'bob' from shadow group 'sudo'"
        let (user, rest) = r.split_once('\'')?;
        let action = if rest.starts_with(" from shadow group") {
            "user_removed_from_shadow_group"
        } else {
            "user_removed_from_group"
        };
        let mut c = Classified::new(Iam, "change", action, Success).target(user);
        c.group = quoted(rest, "group ").and_then(non_empty);
        return Some(c);
    }
    if let Some(r) = m.strip_prefix("user ") {
        // gpasswd: "user bob added by root to group sudo" / "user bob removed by root from group sudo"
        let (action, user, rest) = if let Some((user, rest)) = r.split_once(" added by ") {
            let (by, group) = rest.split_once(" to group ")?;
            ("user_added_to_group", user, (by, group))
        } else {
            let (user, rest) = r.split_once(" removed by ")?;
            let (by, group) = rest.split_once(" from group ")?;
            ("user_removed_from_group", user, (by, group))
        };
        let (by, group) = rest;
        let mut c = Classified::new(Iam, "change", action, Success)
            .user(by)
            .target(user);
        c.group = non_empty(group);
        return Some(c);
    }
    if let Some(r) = m.strip_prefix("changed user '") {
        // chfn: "changed user 'bob' information"; chsh: "changed user 'bob' shell to '/bin/zsh'"
        let (user, _) = r.split_once('\'')?;
        return Some(Classified::new(Iam, "change", "user_changed", Success).target(user));
    }
    if m.starts_with("removed shadow group '") {
        // userdel/groupdel log each group twice (group + gshadow); the /etc/group line is the one counted.
        let mut c = Classified::new(Iam, "deletion", "group_shadow_deleted", Success);
        c.group = quoted(m, "group ").and_then(non_empty);
        return Some(c);
    }
    if let Some(user) = quoted(m, "password for ") {
        // passwd (shadow-utils): "password for 'bob' changed by 'root'"
        let by = quoted(m, "changed by ").unwrap_or("");
        return Some(
            Classified::new(Iam, "change", "password_changed", Success)
                .user(by)
                .target(user),
        );
    }
    if m.starts_with("change user '") && m.ends_with("' password") {
        return Some(
            Classified::new(Iam, "change", "password_changed", Success)
                .target(quoted(m, "change user ")?),
        );
    }
    if m.starts_with("change user '")
        || m.starts_with("lock user '")
        || m.starts_with("unlock user '")
    {
        let user = quoted(m, "user ")?;
        return Some(Classified::new(Iam, "change", "user_changed", Success).target(user));
    }
    if m.starts_with("delete user '") {
        return Some(
            Classified::new(Iam, "deletion", "user_deleted", Success).target(quoted(m, "user ")?),
        );
    }
    if m.starts_with("removed group '") || m.starts_with("group '") && m.contains("removed") {
        let mut c = Classified::new(Iam, "deletion", "group_deleted", Success);
        c.group = quoted(m, "group ").and_then(non_empty);
        return Some(c);
    }
    if m.starts_with("failed adding user") {
        return Some(
            Classified::new(Iam, "creation", "user_created", Failure)
                .target(quoted(m, "user ").unwrap_or("")),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_check_agrees_with_the_standard_parser() {
        let octets = [
            "0", "1", "9", "00", "01", "10", "99", "100", "199", "249", "250", "255", "256", "260",
            "300", "999", "1000", "", "a", "1a", "-1", "+1", " 1",
        ];
        let mut checked = 0;
        for a in octets {
            for b in ["0", "255", "256", "01", ""] {
                for tail in [".1.1", ".1", ".1.1.1", ".1.1.", "..1", ".255.255"] {
                    let s = format!("{a}.{b}{tail}");
                    let std = s.parse::<std::net::Ipv4Addr>().is_ok();
                    assert_eq!(is_ipv4(s.as_bytes()), std, "{s:?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 600);
        for s in [
            "",
            ".",
            "1.2.3.4 ",
            "1.2.3.4\n",
            "::1",
            "1.2.3.4.5",
            "٣.1.1.1",
        ] {
            assert_eq!(
                is_ipv4(s.as_bytes()),
                s.parse::<std::net::Ipv4Addr>().is_ok(),
                "{s:?}"
            );
        }
        assert_eq!(valid_ip("2001:db8::1"), Some("2001:db8::1"));
        assert_eq!(valid_ip("host.example.com"), None);
    }

    #[test]
    fn a_source_is_an_ip_or_a_well_formed_host_name() {
        for good in [
            "203.0.113.7",
            "2001:db8::1",
            "220-135-151-1.hinet-ip.hinet.net",
            "n219076184117.netvigator.com",
            "db_1",
            "localhost",
        ] {
            assert_eq!(valid_address(good), Some(good), "{good}");
        }
        let long = format!("{}.example", "a".repeat(250));
        for bad in [
            "",
            "?",
            "UNKNOWN",
            "1.2.3.256",
            "bad;rm$host",
            "a b",
            "-lead.example",
            ".example",
            "a..b",
            "host/evil",
            "ex\u{e4}mple.com",
            long.as_str(),
        ] {
            assert_eq!(valid_address(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn user_names_cannot_move_the_anchored_fields() {
        // Attackers choose user names; the fields come from sshd's and PAM's own text around them.
        let c = classify(
            "sshd",
            "error: PAM: Authentication failure for illegal user x from 6.6.6.6 from 203.0.113.5",
        )
        .unwrap();
        assert_eq!(
            (c.user, c.source_ip),
            (Some("x from 6.6.6.6"), Some("203.0.113.5"))
        );
        let c = classify(
            "sshd",
            "pam_succeed_if(sshd:auth): requirement \"uid >= 1000\" not met by user \"a\" not met by user \"root\"",
        )
        .unwrap();
        assert_eq!(c.user, Some("a\" not met by user \"root"));
        let c = classify(
            "sshd",
            "Disconnected from invalid user a 6.6.6.6 port 1 203.0.113.5 port 22 [preauth]",
        )
        .unwrap();
        assert_eq!(
            (c.source_ip, c.source_port),
            (Some("203.0.113.5"), Some(22))
        );
        let c = classify_module(
            "sshd",
            "pam_unix",
            "authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=h.example  user=root rhost=6.6.6.6",
        )
        .unwrap();
        assert_eq!((c.action, c.source_ip), ("ssh_login", Some("h.example")));
        assert_eq!(c.user, Some("root rhost=6.6.6.6"));
    }

    #[test]
    fn last_from_is_found_whatever_else_the_line_holds() {
        for s in [
            "Failed password for root from 10.0.0.1 port 22 ssh2",
            "Failed password for invalid user from from 10.0.0.1 port 22 ssh2",
            "Failed password for mmm from 10.0.0.1 port 22 ssh2: RSA SHA256:mmmm",
            "Failed password for x from 10.0.0.1 from 10.0.0.2 port 22",
            "from x",
            " from ",
            "m from",
            "no such thing",
            "",
        ] {
            assert_eq!(rfind_from(s.as_bytes()), s.rfind(" from "), "{s:?}");
        }
    }
}
