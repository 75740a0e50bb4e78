//! LVM: a devices file (`system.devices`) or a path filter that lists the
//! source's disks hides the PVs on new hardware; caches remember old paths.

use super::Ctx;

const NAME: &str = "lvm";

/// Patterns added before a filter's final reject-all: the names disks get
/// on XenServer (PV drivers, emulated IDE/SATA).
const XEN_ACCEPTS: &[&str] = &["a|^/dev/xvd.*|", "a|^/dev/sd.*|", "a|^/dev/hd.*|"];

pub(super) fn run(ctx: &mut Ctx<'_>) -> crate::Result<()> {
    if !ctx.fs.exists("/etc/lvm") {
        ctx.skip(NAME, "no LVM configuration (/etc/lvm) in the guest");
        return Ok(());
    }
    let mut did = false;
    if ctx.fs.exists("/etc/lvm/devices/system.devices") {
        let change = ctx.fs.disable(
            NAME,
            "/etc/lvm/devices/system.devices",
            vec!["lists the source's PV devices; without it LVM scans all disks".into()],
        );
        ctx.record(NAME, "/etc/lvm/devices/system.devices", change);
        did = true;
    }
    if let Some(text) = ctx.fs.read("/etc/lvm/lvm.conf")? {
        let (new, details) = widen_filters(&text);
        if !details.is_empty() {
            let change = ctx.fs.replace(NAME, "/etc/lvm/lvm.conf", &new, details);
            ctx.record(NAME, "/etc/lvm/lvm.conf", change);
            did = true;
        }
    }
    for cache in [
        "/etc/lvm/cache/.cache",
        "/etc/blkid.tab",
        "/etc/blkid/blkid.tab",
    ] {
        if ctx.fs.exists(cache) {
            let change = ctx
                .fs
                .disable(NAME, cache, vec!["cache of old device paths".into()]);
            ctx.record(NAME, cache, change);
            did = true;
        }
    }
    if !did {
        ctx.skip(
            NAME,
            "no devices file, path filter or device cache to change",
        );
    }
    Ok(())
}

/// Adds accept patterns for Xen disk names to each `filter`/`global_filter`
/// that accepts only named disk paths and rejects the rest. Filters that
/// accept everything, or reject by other rules, stay as they are.
fn widen_filters(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut details = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let t = line.trim_start();
        let is_filter = ["filter", "global_filter"].iter().any(|k| {
            t.strip_prefix(k)
                .is_some_and(|r| r.trim_start().starts_with('='))
        });
        let (Some(open), Some(close)) = (line.find('['), line.rfind(']')) else {
            out.push_str(line);
            continue;
        };
        if !is_filter || close < open {
            out.push_str(line);
            continue;
        }
        let patterns = quoted(&line[open + 1..close]);
        let Some(last) = patterns.last() else {
            out.push_str(line);
            continue;
        };
        let rejects_rest = last.starts_with('r') && (last.contains(".*") || last.contains(".+"));
        let path_accepts = patterns.iter().any(|p| {
            p.starts_with('a')
                && ["sd", "vd", "hd", "nvme", "cciss", "disk/by-"]
                    .iter()
                    .any(|n| p.contains(n))
        });
        let missing: Vec<&&str> = XEN_ACCEPTS
            .iter()
            .filter(|a| !patterns.iter().any(|p| p == **a))
            .collect();
        if !(rejects_rest && path_accepts) || missing.is_empty() {
            out.push_str(line);
            continue;
        }
        // Insert before the final reject-all, so earlier specific rejects
        // still win.
        let Some(last_at) = line[..close].rfind(&format!("\"{last}\"")) else {
            out.push_str(line);
            continue;
        };
        let added: String = missing.iter().map(|a| format!("\"{a}\", ")).collect();
        out.push_str(&line[..last_at]);
        out.push_str(&added);
        out.push_str(&line[last_at..]);
        details.push(format!(
            "line {}: accepted {} before \"{last}\"",
            i + 1,
            missing
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    (out, details)
}

fn quoted(s: &str) -> Vec<String> {
    s.split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widens_path_filters_that_reject_the_rest() {
        let conf = "devices {\n\t# filter = [ \"a|.*|\" ]\n\tfilter = [ \"r|/dev/sdc|\", \"a|^/dev/sd[ab][0-9]*$|\", \"r|.*|\" ]\n\tglobal_filter = [ \"a|/dev/nvme0n1p3|\", \"r/.*/\" ]\n}\n";
        let (new, details) = widen_filters(conf);
        assert_eq!(
            new,
            "devices {\n\t# filter = [ \"a|.*|\" ]\n\tfilter = [ \"r|/dev/sdc|\", \"a|^/dev/sd[ab][0-9]*$|\", \"a|^/dev/xvd.*|\", \"a|^/dev/sd.*|\", \"a|^/dev/hd.*|\", \"r|.*|\" ]\n\tglobal_filter = [ \"a|/dev/nvme0n1p3|\", \"a|^/dev/xvd.*|\", \"a|^/dev/sd.*|\", \"a|^/dev/hd.*|\", \"r/.*/\" ]\n}\n"
        );
        assert_eq!(details.len(), 2);
        // A second run finds nothing to add.
        assert!(widen_filters(&new).1.is_empty());
    }

    #[test]
    fn leaves_open_or_unusual_filters() {
        for conf in [
            "filter = [ \"a|.*|\" ]\n",
            "filter = [ \"r|/dev/cdrom|\" ]\n",
            "global_filter = [ \"r|^/dev/loop|\", \"a|.*|\" ]\n",
            "use_devicesfile = 1\n",
        ] {
            let (new, details) = widen_filters(conf);
            assert_eq!(new, conf);
            assert!(details.is_empty(), "{conf}");
        }
    }
}
