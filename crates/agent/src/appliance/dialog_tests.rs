// Test fixtures: a failed step is a failed test.
#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::io::Cursor;
use std::rc::Rc;

use super::*;

const FP: &str = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

/// A pool with one password, two SRs (the second the default) and two
/// networks; it records what it was asked.
#[derive(Default)]
struct FakePool {
    unreachable: Vec<String>,
    calls: Vec<String>,
    no_srs: bool,
}

impl Pool for FakePool {
    fn fingerprint(&mut self, host: &str, port: u16) -> Result<String, String> {
        self.calls.push(format!("fingerprint {host}:{port}"));
        if self.unreachable.iter().any(|h| h == host) {
            return Err("connecting: connection refused".into());
        }
        Ok(FP.into())
    }

    fn login(
        &mut self,
        url: &str,
        fingerprint: &str,
        user: &str,
        password: &Secret,
    ) -> Result<(), LoginError> {
        self.calls.push(format!("login {url} {user}"));
        assert_eq!(
            fingerprint, FP,
            "logs in trusting the confirmed fingerprint"
        );
        match (user, password.expose()) {
            ("root", "s3cret pw") => Ok(()),
            ("broken", _) => Err(LoginError::Other("TLS handshake failed".into())),
            _ => Err(LoginError::Rejected),
        }
    }

    fn storage(&mut self) -> Result<Vec<Sr>, String> {
        if self.no_srs {
            return Ok(Vec::new());
        }
        Ok(vec![
            Sr {
                uuid: "sr-nfs".into(),
                name: "NFS store".into(),
                kind: "nfs".into(),
                free: 3 << 40,
                is_default: false,
            },
            Sr {
                uuid: "sr-local".into(),
                name: "Local storage".into(),
                kind: "lvm".into(),
                free: 200 << 30,
                is_default: true,
            },
        ])
    }

    fn networks(&mut self) -> Result<Vec<Net>, String> {
        Ok(vec![
            Net {
                uuid: "net-0".into(),
                name: "Pool-wide network associated with eth0".into(),
                bridge: "xenbr0".into(),
            },
            Net {
                uuid: "net-1".into(),
                name: "Storage".into(),
                bridge: "xenbr1".into(),
            },
        ])
    }
}

fn facts() -> Facts {
    Facts {
        nics: vec![
            Nic {
                name: "eth0".into(),
                mac: "52:54:00:12:34:56".into(),
            },
            Nic {
                name: "eth1".into(),
                mac: "52:54:00:ab:cd:ef".into(),
            },
        ],
        disks: vec![
            LocalDisk {
                path: "/dev/sda".into(),
                size: 64 << 20,
                summary: "MBR: ext4 \"sample\"; 5.0 MiB to copy".into(),
            },
            LocalDisk {
                path: "/dev/sdb".into(),
                size: 1 << 30,
                summary: "GPT: xfs; 10.0 MiB to copy".into(),
            },
        ],
    }
}

/// Runs the dialog on scripted input; returns the outcome and the transcript.
fn drive(
    pool: &mut FakePool,
    facts: &Facts,
    input: &str,
) -> (Result<Outcome, DialogError>, String) {
    let mut out = Vec::new();
    let result = {
        let mut console = Console::new(Cursor::new(input.as_bytes().to_vec()), &mut out);
        run(&mut console, pool, facts)
    };
    (result, String::from_utf8(out).unwrap())
}

fn argv(outcome: Result<Outcome, DialogError>) -> Vec<String> {
    match outcome.unwrap() {
        Outcome::Convert(ConvertArgv(a)) => a,
        other => panic!("expected a conversion, got {other:?}"),
    }
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

#[test]
fn defaults_everywhere_gives_the_contract_arguments() {
    let mut pool = FakePool::default();
    let input = "xen.example:4443\ny\n\ns3cret pw\n\n\n\n\n\ny\n";
    let (result, transcript) = drive(&mut pool, &facts(), input);
    assert_eq!(
        argv(result),
        words(&format!(
            "convert --to https://xen.example:4443 --fingerprint {FP} --username root \
             --password s3cret_pw --sr sr-local --network 52:54:00:12:34:56=net-0 \
             --network 52:54:00:ab:cd:ef=net-0 -- /dev/sda /dev/sdb"
        ))
        .into_iter()
        .map(|w| w.replace("s3cret_pw", "s3cret pw"))
        .collect::<Vec<_>>()
    );
    assert_eq!(
        pool.calls,
        [
            "fingerprint xen.example:4443",
            "login https://xen.example:4443 root"
        ]
    );
    for shown in [
        FP,
        "2) Local storage (lvm, 200.0 GiB free) [pool default]",
        "Storage repository for the disks [2]: ",
        "Network for eth1 (52:54:00:ab:cd:ef) [1]: ",
        "1) /dev/sda  64.0 MiB  MBR: ext4 \"sample\"; 5.0 MiB to copy",
        "SR       Local storage (sr-local)",
        "network  eth0 (52:54:00:12:34:56) -> Pool-wide network associated with eth0 (net-0)",
        "VM name  from the source",
    ] {
        assert!(
            transcript.contains(shown),
            "{shown:?} missing in:\n{transcript}"
        );
    }
    assert!(
        !transcript.contains("s3cret"),
        "the password is never shown"
    );
}

#[test]
fn choices_map_networks_and_pick_disks() {
    let mut pool = FakePool::default();
    let input = "https://10.0.2.2:8443/\nyes\nroot\ns3cret pw\n1\n2\n1\n2\nweb01\ny\n";
    let (result, _) = drive(&mut pool, &facts(), input);
    let a = argv(result);
    let joined = a.join(" ");
    assert!(
        joined.starts_with("convert --to https://10.0.2.2:8443 "),
        "{joined}"
    );
    assert!(joined.contains("--sr sr-nfs"), "{joined}");
    assert!(
        joined.contains("--network 52:54:00:12:34:56=net-1 --network 52:54:00:ab:cd:ef=net-0"),
        "{joined}"
    );
    assert!(joined.ends_with("--name web01 -- /dev/sdb"), "{joined}");
}

#[test]
fn wrong_password_asks_again_and_keeps_the_user() {
    let mut pool = FakePool::default();
    let input = "xen\ny\nroot\nwrong\n\ns3cret pw\n\n\n\n\n\ny\n";
    let (result, transcript) = drive(&mut pool, &facts(), input);
    assert!(argv(result).contains(&"https://xen".to_string()));
    assert!(transcript.contains("wrong user name or password; try again"));
    assert!(transcript.contains("User name [root]: "));
    assert_eq!(
        pool.calls,
        [
            "fingerprint xen:443",
            "login https://xen root",
            "login https://xen root"
        ]
    );
}

#[test]
fn unreachable_host_and_rejected_fingerprint_ask_for_the_target_again() {
    let mut pool = FakePool {
        unreachable: vec!["down.example".into()],
        ..FakePool::default()
    };
    let input = "http://xen\ndown.example\nxen\nn\nxen2\ny\n\ns3cret pw\n\n\n\n\n\ny\n";
    let (result, transcript) = drive(&mut pool, &facts(), input);
    assert!(argv(result).contains(&"https://xen2".to_string()));
    assert!(transcript.contains("plain http:// would send the password in clear"));
    assert!(transcript.contains("cannot reach down.example:443: connecting: connection refused"));
    assert!(transcript.contains("not trusted: nothing was sent"));
    assert_eq!(
        pool.calls,
        [
            "fingerprint down.example:443",
            "fingerprint xen:443",
            "fingerprint xen2:443",
            "login https://xen2 root"
        ],
        "no login before the fingerprint is confirmed"
    );
}

#[test]
fn a_login_failure_other_than_the_password_goes_back_to_the_target() {
    let mut pool = FakePool::default();
    let input = "xen\ny\nbroken\nx\nxen\ny\nroot\ns3cret pw\n\n\n\n\n\ny\n";
    let (result, transcript) = drive(&mut pool, &facts(), input);
    argv(result);
    assert!(transcript.contains("logging in failed: TLS handshake failed"));
}

#[test]
fn bad_numbers_are_asked_again() {
    let mut pool = FakePool::default();
    let input = "xen\nmaybe\ny\n\ns3cret pw\n7\n1\n0\n\n\n3 x\n2,2\n\ny\n";
    let (result, transcript) = drive(&mut pool, &facts(), input);
    let joined = argv(result).join(" ");
    assert!(joined.contains("--sr sr-nfs"), "{joined}");
    assert!(joined.ends_with("-- /dev/sdb"), "{joined}");
    assert!(transcript.contains("please answer y or n"));
    assert!(transcript.contains("please enter a number from 1 to 2"));
    assert!(transcript.contains("\"3\" is not a disk number"));
}

#[test]
fn no_at_the_plan_cancels() {
    let mut pool = FakePool::default();
    let input = "xen\ny\n\ns3cret pw\n\n\n\n\n\nn\n";
    let (result, transcript) = drive(&mut pool, &facts(), input);
    assert_eq!(result.unwrap(), Outcome::Cancelled);
    assert!(transcript.contains("cancelled: nothing was created"));
}

#[test]
fn input_ending_stops_without_converting() {
    let mut pool = FakePool::default();
    let (result, _) = drive(&mut pool, &facts(), "xen\ny\n");
    assert!(matches!(result, Err(DialogError::InputEnded)), "{result:?}");
}

#[test]
fn no_disks_and_no_srs_are_clear_errors() {
    let mut pool = FakePool::default();
    let (result, _) = drive(&mut pool, &Facts::default(), "xen\n");
    assert!(matches!(result, Err(DialogError::NoDisks)));
    assert!(pool.calls.is_empty(), "nothing asked of the pool");

    let mut pool = FakePool {
        no_srs: true,
        ..FakePool::default()
    };
    let (result, _) = drive(&mut pool, &facts(), "xen\ny\n\ns3cret pw\n");
    let err = result.unwrap_err().to_string();
    assert!(
        err.contains("the pool offers no storage repository"),
        "{err}"
    );
}

#[test]
fn machines_without_network_cards_are_not_asked_about_networks() {
    let mut pool = FakePool::default();
    let mut f = facts();
    f.nics.clear();
    let (result, transcript) = drive(&mut pool, &f, "xen\ny\n\ns3cret pw\n\n\n\ny\n");
    let a = argv(result);
    assert!(!a.contains(&"--network".to_string()), "{a:?}");
    assert!(!transcript.contains("Networks:"));
}

#[test]
fn the_password_is_read_with_echo_off() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let seen = Rc::clone(&log);
    let mut out = Vec::new();
    let secret = {
        let mut console = Console::new(Cursor::new(b"pw with spaces \n".to_vec()), &mut out)
            .with_echo_control(Box::new(move |on| seen.borrow_mut().push(on)));
        console.ask_secret("Password: ").unwrap()
    };
    assert_eq!(secret.expose(), "pw with spaces ");
    assert_eq!(*log.borrow(), [false, true]);
    assert_eq!(String::from_utf8(out).unwrap(), "Password: \n");
}

#[test]
fn debug_of_the_arguments_hides_the_password() {
    let a = ConvertArgv(words("convert --password hunter2 --sr x"));
    let shown = format!("{:?}", Outcome::Convert(a));
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn targets_as_typed() {
    let t = parse_target("xen.example").unwrap();
    assert_eq!(
        (t.url.as_str(), t.host.as_str(), t.port),
        ("https://xen.example", "xen.example", 443)
    );
    let t = parse_target("https://10.0.2.2:4443/").unwrap();
    assert_eq!((t.url.as_str(), t.port), ("https://10.0.2.2:4443", 4443));
    let t = parse_target("[fd00::1]:8443").unwrap();
    assert_eq!(
        (t.url.as_str(), t.host.as_str()),
        ("https://[fd00::1]:8443", "fd00::1")
    );
    for bad in [
        "http://x", "ftp://x", "x:0", "x:http", "fd00::1", "a/b", "u@x",
    ] {
        assert!(parse_target(bad).is_err(), "{bad}");
    }
}
