//! The shell-style patterns of modules.alias (`*`, `?`, `[a-z]`, `[!x]`),
//! matched against a device's modalias.

/// Whether `text` matches `pattern` as a whole.
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    match_from(&p, &t)
}

fn match_from(p: &[char], t: &[char]) -> bool {
    // Iterative with one backtrack point per `*`: linear in practice.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
                continue;
            }
            Some('?') => {
                pi += 1;
                ti += 1;
                continue;
            }
            Some('[') => {
                if let Some((hit, next)) = class(p, pi, t[ti]) {
                    if hit {
                        pi = next;
                        ti += 1;
                        continue;
                    }
                } else if t[ti] == '[' {
                    // An unclosed bracket is a literal.
                    pi += 1;
                    ti += 1;
                    continue;
                }
            }
            Some(&c) if c == t[ti] => {
                pi += 1;
                ti += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Evaluates the bracket class opening at `p[start]` against `c`: whether it
/// matched and where the pattern goes on; `None` when the class is unclosed.
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let &lo = p.get(i)?;
        if lo == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&hi| hi != ']') {
            let &hi = p.get(i + 2)?;
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn modalias_patterns() {
        let rows = [
            (
                "pci:v00008086d0000100Esv*sd*bc*sc*i*",
                "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00",
                true,
            ),
            (
                "pci:v00008086d0000100Esv*sd*bc*sc*i*",
                "pci:v00008086d0000100Fsv00001AF4sd00001100bc02sc00i00",
                false,
            ),
            (
                "pci:v*d*sv*sd*bc01sc06i01*",
                "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
                true,
            ),
            ("virtio:d00000001v*", "virtio:d00000001v00001AF4", true),
            ("virtio:d00000001v*", "virtio:d00000002v00001AF4", false),
            ("usb:v0BDAp8153d[2-2]*dc*", "usb:v0BDAp8153d2100dc00", true),
            ("usb:v0BDAp8153d[2-2]*dc*", "usb:v0BDAp8153d3100dc00", false),
            (
                "usb:v*p*d*dc*dsc*dp*ic08isc06ip50in*",
                "usb:v46F4p0001d0000dc00dsc00dp00ic08isc06ip50in00",
                true,
            ),
            ("scsi:t-0x0[07]*", "scsi:t-0x07", true),
            ("scsi:t-0x0[!07]*", "scsi:t-0x07", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*", "", true),
            ("", "x", false),
            ("a[b", "a[b", true),
            ("fs-xfs", "fs-xfs", true),
            ("*x*y*z", "xxyyzz", true),
            ("*x*y*z", "xxyyza", false),
        ];
        for (i, (pattern, text, want)) in rows.iter().enumerate() {
            assert_eq!(
                matches(pattern, text),
                *want,
                "row {i}: {pattern:?} vs {text:?}"
            );
        }
    }
}
