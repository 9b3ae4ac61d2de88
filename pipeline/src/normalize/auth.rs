//! Classifies Linux authentication and account-management messages (sshd, sudo, su, pam_unix, shadow-utils)
//! into ECS categories, actions, outcomes and entities.
//!
//! Attacker-controlled text (user names sent to sshd) appears inside these lines, so entity extraction
//! anchors on the trailing, sshd-generated part of a line (`… from IP port N`), never on the first match.

use std::net::IpAddr;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use sentra_schemas::{Category, Outcome};

use super::{before_byte, find_byte, split_byte};

/// What a message says, borrowing from the message.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// User acted upon.
    pub target_user: Option<&'a str>,
    /// Group acted upon.
    pub group: Option<&'a str>,
    /// Source IP as logged (validated as an IP address).
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
            user: None,
            target_user: None,
            group: None,
            source_ip: None,
            source_port: None,
            auth_method: None,
            command: None,
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
    if let Some(pam) = message.strip_prefix("pam_unix(") {
        return pam_unix(program, pam);
    }
    match program {
        "sshd" | "sshd-session" => sshd(message),
        "sudo" => sudo(message),
        "su" => su(message),
        "useradd" | "usermod" | "groupadd" | "userdel" | "groupdel" | "groupmod" | "gpasswd"
        | "passwd" | "chpasswd" => account(message),
        _ => None,
    }
}

fn non_empty(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

/// A source address as sshd logs it: the IP (when valid) and the port (when given).
type Endpoint<'a> = (Option<&'a str>, Option<u16>);

/// `s` when it is a valid IPv4 or IPv6 address (sshd logs host names instead when UseDNS is on).
fn valid_ip(s: &str) -> Option<&str> {
    (is_ipv4(s.as_bytes()) || s.parse::<IpAddr>().is_ok()).then_some(s)
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

/// Parses `IP[ port N]…` (anything after is ignored); the IP must be a valid address.
fn ip_port(s: &str) -> Endpoint<'_> {
    let (ip, rest) = split_byte(s, b' ').unwrap_or((s, ""));
    let ip = valid_ip(ip);
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
    let max = m.strip_prefix("error: ").unwrap_or(m);
    if let Some(r) = max.strip_prefix("maximum authentication attempts exceeded for ") {
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
                    .from((kv(r, "rhost=").and_then(valid_ip), None)),
            );
        }
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

fn pam_unix<'a>(program: &str, r: &'a str) -> Option<Classified<'a>> {
    use Category::*;
    use Outcome::*;
    let (service, rest) = r.split_once("): ")?;
    let service = before_byte(service, b':');
    let via = if program.is_empty() { service } else { program };
    if let Some(r) = rest.strip_prefix("authentication failure;") {
        let action = match via {
            "sudo" => "sudo_auth_failure",
            "su" => "su_auth_failure",
            "sshd" | "sshd-session" => "ssh_pam_auth_failure",
            _ => "pam_auth_failure",
        };
        let mut c = Classified::new(Authentication, "info", action, Failure);
        let user = kv(r, "user=").unwrap_or("");
        let ruser = kv(r, "ruser=").unwrap_or("");
        if via == "su" && !ruser.is_empty() {
            c = c.user(ruser).target(user);
        } else {
            c = c.user(user);
        }
        c.source_ip = kv(r, "rhost=").and_then(valid_ip);
        return Some(c);
    }
    if let Some(r) = rest.strip_prefix("session opened for user ") {
        let (target, by) = r.split_once(" by ").unwrap_or((r, ""));
        let (target, by) = (strip_uid(target), strip_uid(by));
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
    if let Some(r) = m
        .strip_prefix("new group: ")
        .or_else(|| m.strip_prefix("group added to /etc/group: "))
    {
        let mut c = Classified::new(Iam, "creation", "group_created", Success);
        c.group = non_empty(comma_kv(r, "name=")?);
        return Some(c);
    }
    if m.starts_with("group added to /etc/gshadow") {
        // groupadd logs each group twice (group + gshadow); the /etc/group line is the one counted.
        let mut c = Classified::new(Iam, "info", "group_shadow_updated", Success);
        c.group = comma_kv(m, "name=").and_then(non_empty);
        return Some(c);
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
    if let Some(r) = m.strip_prefix("user ") {
        // gpasswd: "user bob added by root to group sudo"
        let (user, rest) = r.split_once(" added by ")?;
        let (by, group) = rest.split_once(" to group ")?;
        let mut c = Classified::new(Iam, "change", "user_added_to_group", Success)
            .user(by)
            .target(user);
        c.group = non_empty(group);
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
