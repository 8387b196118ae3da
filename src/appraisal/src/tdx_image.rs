//! TDX whole-image appraisal: which image booted, from MRTD, the RTMRs and
//! the firmware's event log, against `[tdx]` (appliance images) and `[coco]`
//! (Confidential Containers pods).
//!
//! MRTD covers only the firmware (TDVF). The kernel, its command line and the
//! initrd are measured at boot into RTMR1 and RTMR2 and recorded, event by
//! event, in the CC event log (CCEL) the guest sends in `event_log`. The
//! checks, in order (each its own function):
//!
//! 1. `tdx.eventlog`: the log, when present, is a well-formed TCG
//!    crypto-agile log whose measured events all name an RTMR.
//! 2. `tdx.eventlog.replay`: replaying it gives the quote's RTMR0-2 (and
//!    RTMR3 when it records RTMR3 events: RTMR3 is extended at run time, e.g.
//!    by a CoCo attestation-agent, whose events are logged elsewhere). The
//!    denial names the RTMR, its events, and the first differing event where
//!    that can be told (an event whose digest is not the hash of its data, or
//!    the first event past the prefix the quote holds).
//! 3. Appliance image (`[tdx]`): `tdx.mrtd`, then the RTMR allow-lists
//!    `tdx.rtmr0`..`tdx.rtmr3`, then the component pins `tdx.component.kernel`,
//!    `.initrd`, `.cmdline` against the log's events (the log is then
//!    required). Under component pins every event of RTMR1 (kernel pinned,
//!    RTMR1 not) and of RTMR2 (initrd or command line pinned, RTMR2 not) must
//!    be accounted for: the component's own event, exactly once, or a
//!    separator or EFI action whose digest is the hash of its (short, printable)
//!    data. Otherwise a kernel that extends RTMR1 itself could relabel its own
//!    measurement in the log and add a forged "kernel" event: the replay would
//!    still match. RTMR pins need no such rule: they pin the final value.
//! 4. If the appliance checks fail and `[coco]` accepts pods: the Kata guest
//!    image (`coco.tdx_mrtds`, `coco.tdx_rtmr1`, `coco.tdx_rtmr2`); when it
//!    matches, MRCONFIGID must be a pinned init-data digest (`coco.init_data`).
//!    Otherwise the appliance denial stands.

use tee_formats::eventlog::{extend, types, Component, Event, EventLog, Sha384Digest, RTMR_COUNT};
use tee_formats::tdx::measurement::image_measurement;

use crate::denial::{deny, Check, Denial};
use crate::hex::{self, Hex};
use crate::policy::{CocoPolicy, Policy, TdxPolicy};
use crate::trace::Trace;

/// The TD measurements the image checks read (from the verified quote).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TdMeasurements {
    /// MRTD.
    pub mr_td: [u8; 48],
    /// RTMR0..RTMR3.
    pub rtmr: [[u8; 48]; RTMR_COUNT],
    /// MRCONFIGID.
    pub mr_config_id: [u8; 48],
}

/// Which kind of image the evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// An appliance image of `[tdx]`.
    Appliance,
    /// A CoCo pod's Kata guest of `[coco]`, with its pinned init-data.
    Pod {
        /// MRCONFIGID.
        init_data: [u8; 48],
    },
}

/// The verdict on an accepted image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Image {
    /// Appliance or pod.
    pub profile: Profile,
    /// Whether kernel, initrd and command line were all pinned.
    pub os_pinned: bool,
    /// The `measurement` claim (MRTD, RTMR1, RTMR2).
    pub measurement: [u8; 48],
}

/// Appraises the booted image (see the module documentation).
pub(crate) fn appraise(
    td: &TdMeasurements,
    event_log: Option<&[u8]>,
    policy: &Policy,
    t: &mut Trace,
) -> Result<Image, Denial> {
    let log = match event_log {
        Some(bytes) => {
            let log = t.step(&[Check::TdxEventLog], parse_log(bytes))?;
            t.step(&[Check::TdxEventLogReplay], check_replay(&log, td))?;
            Some(log)
        }
        None => None,
    };
    let measurement = image_measurement(&td.mr_td, &td.rtmr[1], &td.rtmr[2]);
    // The appliance's checks are traced apart: when the image is a CoCo
    // pod instead, they are not the ones that decided.
    let mut appliance_trace = Trace::new();
    match appliance(td, log.as_ref(), &policy.tdx, &mut appliance_trace) {
        Ok(os_pinned) => {
            t.append(appliance_trace);
            if log.is_none() {
                t.skip(
                    Check::TdxEventLog,
                    "no event log in the bundle and no component pins",
                );
                t.skip(Check::TdxEventLogReplay, "no event log in the bundle");
            }
            t.skip(Check::CocoInitData, "an appliance image, not a CoCo pod");
            Ok(Image {
                profile: Profile::Appliance,
                os_pinned,
                measurement,
            })
        }
        Err(denial) => match pod(td, &policy.coco) {
            Some(result) => {
                t.skip(
                    Check::TdxMrtd,
                    "a CoCo pod's Kata guest image, not an appliance",
                );
                let init_data = t.step(&[Check::CocoInitData], result)?;
                Ok(Image {
                    profile: Profile::Pod { init_data },
                    os_pinned: true,
                    measurement,
                })
            }
            None => {
                t.append(appliance_trace);
                Err(denial)
            }
        },
    }
}

fn parse_log(bytes: &[u8]) -> Result<EventLog<'_>, Denial> {
    EventLog::parse(bytes).map_err(|e| {
        Denial::new(
            Check::TdxEventLog,
            format!("event log of {} bytes: {e}", bytes.len()),
            "a TCG crypto-agile CC event log (Spec ID Event03, SHA-384), as TDVF writes it",
            "send the CCEL log area as the firmware wrote it (the guest trims only its padding)",
        )
    })
}

/// The log's measured events, each with its RTMR.
fn measured<'l, 'a>(log: &'l EventLog<'a>) -> Result<Vec<(usize, &'l Event<'a>)>, Denial> {
    log.measured().map_err(|e| {
        Denial::new(
            Check::TdxEventLog,
            e.to_string(),
            "measured events that extend RTMR0-3 (CC MR index 1-4)",
            "the log is not a TDX CC event log",
        )
    })
}

fn check_replay(log: &EventLog<'_>, td: &TdMeasurements) -> Result<(), Denial> {
    let events = measured(log)?;
    for (i, quoted) in td.rtmr.iter().enumerate() {
        let mine: Vec<&Event<'_>> = events
            .iter()
            .filter(|(r, _)| *r == i)
            .map(|(_, e)| *e)
            .collect();
        if i == 3 && mine.is_empty() {
            // RTMR3 belongs to run time: its extensions are not in the CCEL.
            continue;
        }
        let mut replayed = [0u8; 48];
        for e in &mine {
            extend(&mut replayed, &e.sha384);
        }
        if &replayed == quoted {
            continue;
        }
        return deny(
            Check::TdxEventLogReplay,
            format!(
                "RTMR{i} replays to {} from {}; {}",
                hex::encode(&replayed),
                event_list(i, &mine),
                diagnose(i, &mine, quoted)
            ),
            format!("RTMR{i} of the quote: {}", hex::encode(quoted)),
            "the event log is not the record of this TD's boot: send the CCEL of the TD that made the quote, unmodified",
        );
    }
    Ok(())
}

/// "the log's N RTMRi events #a, #b, …".
fn event_list(rtmr: usize, events: &[&Event<'_>]) -> String {
    if events.is_empty() {
        return format!("no RTMR{rtmr} event in the log");
    }
    const SHOWN: usize = 32;
    let mut numbers: Vec<String> = events
        .iter()
        .take(SHOWN)
        .map(|e| format!("#{}", e.number))
        .collect();
    if events.len() > SHOWN {
        numbers.push("…".to_owned());
    }
    format!(
        "the log's {} RTMR{rtmr} events {}",
        events.len(),
        numbers.join(", ")
    )
}

/// Event types whose digest is, by specification, the SHA-384 of their data.
fn digest_of_data_by_spec(event_type: u32) -> bool {
    matches!(
        event_type,
        types::EV_SEPARATOR | types::EV_EFI_ACTION | types::EV_EFI_VARIABLE_DRIVER_CONFIG
    )
}

/// Which event differs, where the log and the quote can tell.
fn diagnose(rtmr: usize, events: &[&Event<'_>], quoted: &Sha384Digest) -> String {
    if let Some(e) = events
        .iter()
        .find(|e| digest_of_data_by_spec(e.event_type) && !e.digest_is_hash_of_data())
    {
        return format!(
            "first differing event: #{} ({}, {}): its digest is not the SHA-384 of its data",
            e.number,
            e.type_name().unwrap_or("event"),
            e.describe()
        );
    }
    let mut fold = [0u8; 48];
    for (k, e) in events.iter().enumerate() {
        if &fold == quoted {
            return format!(
                "the quote's RTMR{rtmr} is the replay of the first {k} of them: event #{} and later are not in it",
                e.number
            );
        }
        extend(&mut fold, &e.sha384);
    }
    "no prefix of these events replays to the quote's value: a digest among them differs".to_owned()
}

/// The appliance checks of `[tdx]`; `Ok(os_pinned)`.
fn appliance(
    td: &TdMeasurements,
    log: Option<&EventLog<'_>>,
    p: &TdxPolicy,
    t: &mut Trace,
) -> Result<bool, Denial> {
    t.step(&[Check::TdxMrtd], check_mrtd(td, p))?;
    for (i, (check, pins)) in [
        (Check::TdxRtmr0, &p.rtmr0),
        (Check::TdxRtmr1, &p.rtmr1),
        (Check::TdxRtmr2, &p.rtmr2),
        (Check::TdxRtmr3, &p.rtmr3),
    ]
    .into_iter()
    .enumerate()
    {
        t.step(&[check], check_rtmr(check, i, &td.rtmr[i], pins))?;
    }
    const COMPONENTS: [Check; 3] = [
        Check::TdxComponentKernel,
        Check::TdxComponentInitrd,
        Check::TdxComponentCmdline,
    ];
    if p.kernel.is_some() || p.initrd.is_some() || p.cmdline.is_some() {
        let Some(log) = log else {
            return t.step(
                &[],
                deny(
                    Check::TdxEventLog,
                    "no event log in the bundle",
                    "the CC event log the kernel, initrd and command-line pins (tdx.kernel, tdx.initrd, tdx.cmdline) are checked against",
                    "the guest sends /sys/firmware/acpi/tables/data/CCEL when the firmware provides it; without a log, pin tdx.rtmr1 and tdx.rtmr2 instead",
                ),
            );
        };
        t.group(&COMPONENTS, check_components(log, p))?;
    } else {
        for c in COMPONENTS {
            t.skip(c, "no kernel, initrd or command-line pin in the policy");
        }
    }
    Ok(p.unpinned_os().is_empty())
}

fn check_mrtd(td: &TdMeasurements, p: &TdxPolicy) -> Result<(), Denial> {
    if !p.mrtds.iter().any(|m| m.0 == td.mr_td) {
        return deny(
            Check::TdxMrtd,
            hex::encode(&td.mr_td),
            hex::list(&p.mrtds),
            "add this image's MRTD to tdx.mrtds, if you built it",
        );
    }
    Ok(())
}

fn check_rtmr(
    check: Check,
    i: usize,
    got: &[u8; 48],
    pins: &Option<Vec<Hex<48>>>,
) -> Result<(), Denial> {
    let Some(pins) = pins else { return Ok(()) };
    if !pins.iter().any(|h| &h.0 == got) {
        let holds = match i {
            0 => "the VM configuration: TD HOB, UEFI variables, ACPI tables",
            1 => "the kernel and the boot path",
            2 => "the kernel command line and the initrd",
            _ => "run-time measurements",
        };
        return deny(
            check,
            format!("RTMR{i} {}", hex::encode(got)),
            format!("{} (policy tdx.rtmr{i})", hex::list(pins)),
            format!("RTMR{i} ({holds}) differs from every allowed value: the TD booted another image, or add its value if you built it"),
        );
    }
    Ok(())
}

fn component_check(c: Component) -> Check {
    match c {
        Component::Kernel => Check::TdxComponentKernel,
        Component::Initrd => Check::TdxComponentInitrd,
        Component::Cmdline => Check::TdxComponentCmdline,
    }
}

fn component_hint(c: Component) -> &'static str {
    match c {
        Component::Kernel => "boot a kernel tdx.kernel lists (its Authenticode SHA-384, as `enclavectl measure --tdvf … --kernel` prints it)",
        Component::Initrd => "boot an initrd tdx.initrd lists (SHA-384 of the file, as `enclavectl measure` prints it); a kernel whose EFI stub does not measure the initrd cannot satisfy this pin",
        Component::Cmdline => "boot with a command line tdx.cmdline lists (SHA-384 of UTF-16LE \"<cmdline> initrd=initrd\" and a NUL, as `enclavectl measure` prints it)",
    }
}

/// A separator or an EFI action whose digest is the hash of its own (short,
/// printable) data: the log itself says what was measured. A PE image or an
/// initramfs cannot pass as one (not printable, or too long).
fn self_evident(e: &Event<'_>) -> bool {
    let sep = e.event_type == types::EV_SEPARATOR && (e.data == [0u8; 4] || e.data == [0xffu8; 4]);
    let action = e.action_text().is_some_and(|t| t.len() <= 256);
    (sep || action) && e.digest_is_hash_of_data()
}

fn check_components(log: &EventLog<'_>, p: &TdxPolicy) -> Result<(), Denial> {
    let events = measured(log)?;
    for (c, pins) in [
        (Component::Kernel, &p.kernel),
        (Component::Initrd, &p.initrd),
        (Component::Cmdline, &p.cmdline),
    ] {
        let Some(pins) = pins else { continue };
        let r = c.rtmr();
        let found: Vec<&Event<'_>> = events
            .iter()
            .filter(|(i, e)| *i == r && e.component() == Some(c))
            .map(|(_, e)| *e)
            .collect();
        let want = format!("{} (policy tdx.{})", hex::list(pins), c.as_str());
        match found.as_slice() {
            [] => {
                return deny(
                    component_check(c),
                    format!("no {} event in RTMR{r} of the event log", c.as_str()),
                    want,
                    component_hint(c),
                )
            }
            [e] => {
                if !pins.iter().any(|h| h.0 == e.sha384) {
                    return deny(
                        component_check(c),
                        format!(
                            "event #{} (RTMR{r}, {}) {}",
                            e.number,
                            e.type_name().unwrap_or("event"),
                            hex::encode(&e.sha384)
                        ),
                        want,
                        component_hint(c),
                    );
                }
            }
            many => {
                let numbers: Vec<String> = many.iter().map(|e| format!("#{}", e.number)).collect();
                return deny(
                    component_check(c),
                    format!("{} {} events in RTMR{r}: {}", many.len(), c.as_str(), numbers.join(", ")),
                    format!("exactly one, in {want}"),
                    "a boot chain (shim, GRUB) or a second image: the component pins describe a direct boot; pin the RTMRs instead",
                );
            }
        }
    }
    let mut accounted = Vec::new();
    if p.kernel.is_some() && p.rtmr1.is_none() {
        accounted.push(1);
    }
    if (p.initrd.is_some() || p.cmdline.is_some()) && p.rtmr2.is_none() {
        accounted.push(2);
    }
    for (r, e) in events.iter().filter(|(r, _)| accounted.contains(r)) {
        let ok = match e.component() {
            Some(c) => c.rtmr() == *r,
            None => self_evident(e),
        };
        if !ok {
            return deny(
                Check::TdxEventLog,
                format!(
                    "event #{} in RTMR{r} ({}: {}) is neither a pinned component's event nor a separator or action whose digest is the hash of its data",
                    e.number,
                    e.type_name().unwrap_or("unnamed type"),
                    e.describe()
                ),
                format!("RTMR{r} events the component pins account for"),
                format!("the pins cannot vouch for this event; pin tdx.rtmr{r} with the value of a known-good boot (enclavectl evidence inspect shows the log)"),
            );
        }
    }
    Ok(())
}

/// The CoCo pod profile: `None` when `[coco]` does not accept TDX pods or the
/// Kata guest image does not match; else the init-data verdict.
fn pod(td: &TdMeasurements, c: &CocoPolicy) -> Option<Result<[u8; 48], Denial>> {
    let listed = |list: &[Hex<48>], v: &[u8; 48]| list.iter().any(|h| &h.0 == v);
    if !c.allowed
        || !listed(&c.tdx_mrtds, &td.mr_td)
        || !listed(&c.tdx_rtmr1, &td.rtmr[1])
        || !listed(&c.tdx_rtmr2, &td.rtmr[2])
    {
        return None;
    }
    if listed(&c.init_data_tdx, &td.mr_config_id) {
        return Some(Ok(td.mr_config_id));
    }
    Some(deny(
        Check::CocoInitData,
        format!("MRCONFIGID {}", hex::encode(&td.mr_config_id)),
        format!("{} (policy coco.init_data_tdx)", hex::list(&c.init_data_tdx)),
        "this pod runs the accepted Kata guest with other init-data (or none): its agent policy and configuration are not the pinned ones; `enclavectl measure --initdata FILE` gives the digest of the intended init-data",
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use tee_formats::tdx::{Quote, QuoteBody};

    use super::*;

    /// The appraisal without its trace (these tests check the denials).
    fn appraise(td: &TdMeasurements, log: Option<&[u8]>, p: &Policy) -> Result<Image, Denial> {
        super::appraise(td, log, p, &mut Trace::new())
    }

    fn fixture(rel: &str) -> Vec<u8> {
        let dir = std::env::var("ENCLAVE_FIXTURES").unwrap_or_else(|_| {
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures").to_owned()
        });
        std::fs::read(format!("{dir}/{rel}")).unwrap_or_else(|e| {
            panic!("fixture {dir}/{rel}: {e} (set ENCLAVE_FIXTURES to shared/fixtures)")
        })
    }

    const COS_LOG: &str = "cloud/tdx-eventlog/go-tdx-guest-gcp-cos113/ccel_data.dat";
    const COS_QUOTE: &str = "cloud/tdx-eventlog/go-tdx-guest-gcp-cos113/cos-113-tdx-quote.dat";
    const DIRECT: &str = "cloud/tdx-eventlog/go-eventlog/CCEL_unpadded.data.bin";
    const OLD_TDVF: &str = "cloud/tdx-eventlog/go-eventlog/event_log.bin";
    const DUPE: &str = "cloud/tdx-eventlog/go-eventlog/cos-113-intel-tdx-dupe-separator.bin";

    // SOURCES.md §3 (cloud): COS-113 quote values.
    const COS_MRTD: &str = "dae67181d3d65e073ad8f95b7907d5e927bfe9761c9ff3e9b89734a45d8954dba41394c7717cb2735396c1d04231f94a";
    const COS_RTMR1: &str = "f62dbc072bd5d3f3438b7b35c39a727f5aea2ffc2473f43723953f530daf62504f0a7944aa62c41a86e8a878c2b122c1";
    const COS_RTMR2: &str = "4969684dc87381fc3b3134176c8d8806eaf0a901859f5f70cfae8d17714b46c10a8de219048c9fc09f11f381a6fbe7c1";
    // go-eventlog CCEL_unpadded: RTMR2 (SOURCES.md), and the digests of its
    // events 12 (kernel) and 17 (LoadOptions), read off the log with the
    // independent Python decoder used for SOURCES.md.
    const DIRECT_RTMR2: &str = "c3e7ed9d7e909b29732f676d01dc63de869b049362b522a315cb042689670be07344c347cf85d985c7b928d4934e41e1";

    fn td_of_quote(rel: &str) -> TdMeasurements {
        let q = Quote::parse(&fixture(rel)).unwrap();
        let b = match &q.body {
            QuoteBody::Td10(b) => b.clone(),
            QuoteBody::Td15(b) => b.td10.clone(),
            QuoteBody::Td15Ex(b) => b.td15.td10.clone(),
        };
        TdMeasurements {
            mr_td: b.mr_td,
            rtmr: b.rtmr,
            mr_config_id: b.mr_config_id,
        }
    }

    /// The policy, with explicit zero minimum TCBs where the text names
    /// none (the strict loader requires them; these tests are about images).
    fn policy(text: &str) -> Policy {
        let text = crate::policy::tests::with_minima(text);
        Policy::from_toml(text.as_bytes()).unwrap_or_else(|e| panic!("{e:?}\n{text}"))
    }

    fn h(s: &str) -> [u8; 48] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn cos_log_replays_to_its_quote_and_pins_the_image() {
        let td = td_of_quote(COS_QUOTE);
        assert_eq!(hex::encode(&td.mr_td), COS_MRTD);
        let p = policy(&format!(
            "[tdx]\nallowed = true\nmrtds = [\"{COS_MRTD}\"]\nrtmr1 = \"{COS_RTMR1}\"\nrtmr2 = [\"{COS_RTMR2}\"]\n"
        ));
        let log = fixture(COS_LOG);
        let image = appraise(&td, Some(&log), &p).unwrap();
        assert_eq!(image.profile, Profile::Appliance);
        assert!(image.os_pinned);
        let mut tagged = b"enclave-init/tdx-measurement/v1\0".to_vec();
        for v in [COS_MRTD, COS_RTMR1, COS_RTMR2] {
            tagged.extend_from_slice(&h(v));
        }
        let want: [u8; 48] = <sha2::Sha384 as sha2::Digest>::digest(&tagged).into();
        assert_eq!(image.measurement, want);
        // Trimmed to the log proper, and without any log (RTMR pins need none).
        let trimmed = &log[..18_101];
        assert_eq!(appraise(&td, Some(trimmed), &p).unwrap(), image);
        assert_eq!(appraise(&td, None, &p).unwrap(), image);
    }

    #[test]
    fn one_changed_event_digest_is_denied_naming_its_rtmr_and_event() {
        let td = td_of_quote(COS_QUOTE);
        let p = policy(&format!(
            "[tdx]\nallowed = true\nmrtds = [\"{COS_MRTD}\"]\nallow_unpinned_os = true\n"
        ));
        let log = fixture(COS_LOG);
        let parsed = EventLog::parse(&log).unwrap();
        // Event 15: EV_EFI_ACTION "Calling EFI Application from Boot Option" in RTMR1.
        let e15 = parsed.events[14].clone();
        assert_eq!(
            (e15.number, e15.rtmr(), e15.event_type),
            (15, Some(1), types::EV_EFI_ACTION)
        );
        let digest_at = e15.offset + 12 + 2;
        // Event 39: EV_IPL "grub_cmd: linux …" in RTMR2 (its digest is not the hash of its data).
        let e39 = parsed.events[38].clone();
        assert_eq!((e39.rtmr(), e39.event_type), (Some(2), types::EV_IPL));
        drop(parsed);

        let mut bad = log.clone();
        bad[digest_at] ^= 1;
        let d = appraise(&td, Some(&bad), &p).unwrap_err();
        assert_eq!(d.check, Check::TdxEventLogReplay, "{d}");
        assert!(d.got.starts_with("RTMR1 replays to "), "{d}");
        assert!(
            d.got.contains("first differing event: #15 (EV_EFI_ACTION"),
            "{d}"
        );
        assert_eq!(d.want, format!("RTMR1 of the quote: {COS_RTMR1}"));

        let mut bad = log.clone();
        bad[e39.offset + 14] ^= 0x80;
        let d = appraise(&td, Some(&bad), &p).unwrap_err();
        assert_eq!(d.check, Check::TdxEventLogReplay, "{d}");
        assert!(d.got.starts_with("RTMR2 replays to "), "{d}");
        assert!(
            d.got
                .contains("the log's 20 RTMR2 events #19, #20, #23, #25,"),
            "{d}"
        );
        assert!(d.got.contains(" #39,"), "{d}");
        assert!(d.got.ends_with("no prefix of these events replays to the quote's value: a digest among them differs"), "{d}");
    }

    #[test]
    fn a_log_the_quote_holds_only_a_prefix_of_names_the_first_extra_event() {
        // The quote as it was before GRUB measured its last three RTMR2
        // events (#39 grub_cmd linux, #40 /syslinux/vmlinuz.A, #41 kernel_cmdline).
        let mut td = td_of_quote(COS_QUOTE);
        let log = fixture(COS_LOG);
        let parsed = EventLog::parse(&log).unwrap();
        let mut rtmr2 = [0u8; 48];
        for e in parsed
            .events
            .iter()
            .filter(|e| e.rtmr() == Some(2))
            .take(17)
        {
            extend(&mut rtmr2, &e.sha384);
        }
        td.rtmr[2] = rtmr2;
        let p = policy(&format!(
            "[tdx]\nallowed = true\nmrtds = [\"{COS_MRTD}\"]\nallow_unpinned_os = true\n"
        ));
        let d = appraise(&td, Some(&log), &p).unwrap_err();
        assert_eq!(d.check, Check::TdxEventLogReplay);
        assert!(d.got.ends_with("the quote's RTMR2 is the replay of the first 17 of them: event #39 and later are not in it"), "{d}");
    }

    #[test]
    fn the_duplicated_separator_log_is_not_the_quotes() {
        let td = td_of_quote(COS_QUOTE);
        let p = policy(&format!(
            "[tdx]\nallowed = true\nmrtds = [\"{COS_MRTD}\"]\nallow_unpinned_os = true\n"
        ));
        let d = appraise(&td, Some(&fixture(DUPE)), &p).unwrap_err();
        assert_eq!(d.check, Check::TdxEventLogReplay);
        // RTMR0 replays to the value SOURCES.md states for this log.
        // Its RTMR0 holds COS-113's 16 events plus the moved separator #16.
        assert!(d.got.starts_with("RTMR0 replays to a4de2df23e9611299123ba4359c42a5e578b0f8488bf1bba8ef5606d9ea5d81c97c064b482a5eac537d166bd0f0f752d from the log's 17 RTMR0 events #1, #2,"), "{d}");
        assert!(d.got.contains(" #14, #16, #21, #22;"), "{d}");
    }

    #[test]
    fn malformed_or_missing_logs_are_tdx_eventlog() {
        let td = td_of_quote(COS_QUOTE);
        let p = policy(&format!(
            "[tdx]\nallowed = true\nmrtds = [\"{COS_MRTD}\"]\nallow_unpinned_os = true\n"
        ));
        let log = fixture(COS_LOG);
        let d = appraise(&td, Some(&log[..10_000]), &p).unwrap_err();
        assert_eq!(d.check, Check::TdxEventLog);
        assert!(d.got.starts_with("event log of 10000 bytes: "), "{d}");
        // The GPT event (#17, at 0x2552) declares more data than is left.
        assert!(
            d.got
                .ends_with("event eventSize at offset 0x2590 declares 1636 bytes, only 380 left"),
            "{d}"
        );
        let d = appraise(&td, Some(&[0u8; 0]), &p).unwrap_err();
        assert_eq!(d.check, Check::TdxEventLog);

        let pinned = policy(&format!(
            "[tdx]\nallowed = true\nmrtds = [\"{COS_MRTD}\"]\nkernel = [\"{}\"]\nallow_unpinned_os = true\n",
            "11".repeat(48)
        ));
        let d = appraise(&td, None, &pinned).unwrap_err();
        assert_eq!(
            (d.check, d.got.as_str()),
            (Check::TdxEventLog, "no event log in the bundle")
        );
    }

    #[test]
    fn an_rtmr_pin_that_differs_is_denied_by_that_rtmr() {
        let td = td_of_quote(COS_QUOTE);
        let p = policy(&format!(
            "[tdx]\nallowed = true\nmrtds = [\"{COS_MRTD}\"]\nrtmr1 = \"{COS_RTMR1}\"\nrtmr2 = \"{DIRECT_RTMR2}\"\n"
        ));
        let d = appraise(&td, Some(&fixture(COS_LOG)), &p).unwrap_err();
        assert_eq!(d.check, Check::TdxRtmr2);
        assert_eq!(d.got, format!("RTMR2 {COS_RTMR2}"));
        assert!(
            d.want.contains(DIRECT_RTMR2) && d.want.ends_with("(policy tdx.rtmr2)"),
            "{d}"
        );
    }

    /// The go-eventlog direct-boot log (no quote exists for it): the TD
    /// measurements are taken as its replay, so only the component checks
    /// are under test here (the replay values are checked in tee-formats).
    fn direct() -> (Vec<u8>, TdMeasurements) {
        let log = fixture(DIRECT);
        let rtmr = EventLog::parse(&log).unwrap().replay().unwrap();
        assert_eq!(hex::encode(&rtmr[2]), DIRECT_RTMR2);
        (
            log,
            TdMeasurements {
                mr_td: [7; 48],
                rtmr,
                mr_config_id: [0; 48],
            },
        )
    }

    fn direct_policy(extra: &str) -> Policy {
        policy(&format!(
            "[tdx]\nallowed = true\nmrtds = [\"{}\"]\nallow_unpinned_os = true\n{extra}",
            "07".repeat(48)
        ))
    }

    const DIRECT_KERNEL: &str = "b575e51f1a731998";
    const DIRECT_CMDLINE: &str = "3e6ed3b37cfc9728";

    fn event_digest(log: &[u8], number: u32) -> String {
        let l = EventLog::parse(log).unwrap();
        hex::encode(&l.events[number as usize - 1].sha384)
    }

    #[test]
    fn component_pins_are_compared_with_the_direct_boot_events() {
        let (log, td) = direct();
        let kernel = event_digest(&log, 12);
        let cmdline = event_digest(&log, 17);
        assert!(kernel.starts_with(DIRECT_KERNEL) && cmdline.starts_with(DIRECT_CMDLINE));
        let ok = direct_policy(&format!(
            "kernel = [\"{kernel}\"]\ncmdline = [\"{cmdline}\"]\n"
        ));
        let image = appraise(&td, Some(&log), &ok).unwrap();
        assert!(!image.os_pinned, "the initrd is not pinned");

        let other = "22".repeat(48);
        let d = appraise(
            &td,
            Some(&log),
            &direct_policy(&format!("kernel = [\"{other}\"]\n")),
        )
        .unwrap_err();
        assert_eq!(d.check, Check::TdxComponentKernel);
        assert_eq!(
            d.got,
            format!("event #12 (RTMR1, EV_EFI_BOOT_SERVICES_APPLICATION) {kernel}")
        );
        let d = appraise(
            &td,
            Some(&log),
            &direct_policy(&format!("cmdline = [\"{other}\"]\n")),
        )
        .unwrap_err();
        assert_eq!(d.check, Check::TdxComponentCmdline);
        assert_eq!(d.got, format!("event #17 (RTMR2, EV_EVENT_TAG) {cmdline}"));
        // This kernel's EFI stub recorded no initrd event.
        let d = appraise(
            &td,
            Some(&log),
            &direct_policy(&format!("initrd = [\"{other}\"]\n")),
        )
        .unwrap_err();
        assert_eq!(
            (d.check, d.got.as_str()),
            (
                Check::TdxComponentInitrd,
                "no initrd event in RTMR2 of the event log"
            )
        );
        // Without the log, component pins cannot be checked.
        let d = appraise(&td, None, &ok).unwrap_err();
        assert_eq!(d.check, Check::TdxEventLog);
    }

    #[test]
    fn component_pins_refuse_a_boot_chain_and_unaccounted_events() {
        // COS-113 boots shim then GRUB: two UEFI applications in RTMR1.
        let td = td_of_quote(COS_QUOTE);
        let p = policy(&format!(
            "[tdx]\nallowed = true\nmrtds = [\"{COS_MRTD}\"]\nkernel = [\"{}\"]\nallow_unpinned_os = true\n",
            "11".repeat(48)
        ));
        let d = appraise(&td, Some(&fixture(COS_LOG)), &p).unwrap_err();
        assert_eq!(
            (d.check, d.got.as_str()),
            (
                Check::TdxComponentKernel,
                "2 kernel events in RTMR1: #18, #24"
            )
        );

        // An older TDVF records the raw kernel blob as EV_PLATFORM_CONFIG_FLAGS
        // "kernel" (#10) in RTMR1 beside the UEFI application (#14): the kernel
        // pin cannot vouch for #10.
        let log = fixture(OLD_TDVF);
        let rtmr = EventLog::parse(&log).unwrap().replay().unwrap();
        let td = TdMeasurements {
            mr_td: [7; 48],
            rtmr,
            mr_config_id: [0; 48],
        };
        let kernel = event_digest(&log, 14);
        let p = direct_policy(&format!("kernel = [\"{kernel}\"]\n"));
        let d = appraise(&td, Some(&log), &p).unwrap_err();
        assert_eq!(d.check, Check::TdxEventLog);
        assert!(
            d.got.starts_with(
                "event #10 in RTMR1 (EV_PLATFORM_CONFIG_FLAGS: platform configuration: kernel)"
            ),
            "{d}"
        );
        // Pinning RTMR1 itself lifts the accounting rule.
        let p = direct_policy(&format!(
            "kernel = [\"{kernel}\"]\nrtmr1 = \"{}\"\n",
            hex::encode(&rtmr[1])
        ));
        appraise(&td, Some(&log), &p).unwrap();
    }

    #[test]
    fn a_relabelled_kernel_measurement_is_not_accounted_for() {
        // A kernel that extends RTMR1 itself could keep the replay right while
        // relabelling its own measurement (#12) and adding a forged kernel
        // event; here #12 is relabelled EV_EFI_ACTION: its digest is not the
        // hash of its data, so it is refused.
        let (mut log, td) = direct();
        let offset = EventLog::parse(&log).unwrap().events[11].offset;
        log[offset + 4..offset + 8].copy_from_slice(&types::EV_EFI_ACTION.to_le_bytes());
        let p = direct_policy(&format!("kernel = [\"{}\"]\n", "33".repeat(48)));
        let d = appraise(&td, Some(&log), &p).unwrap_err();
        // No kernel event is left at all.
        assert_eq!(
            (d.check, d.got.as_str()),
            (
                Check::TdxComponentKernel,
                "no kernel event in RTMR1 of the event log"
            )
        );
    }

    const Q6: &str = "tdx/trustee/tdx_quote_6.dat";

    fn coco_policy(init: &str) -> Policy {
        let td = td_of_quote(Q6);
        policy(&format!(
            "[tdx]\nallowed = true\nmrtds = [\"{}\"]\nrtmr1 = \"{}\"\nrtmr2 = \"{}\"\n\
             [coco]\nallowed = true\ntdx_mrtds = [\"{}\"]\ntdx_rtmr1 = [\"{}\"]\ntdx_rtmr2 = [\"{}\"]\ninit_data_tdx = [\"{init}\"]\n",
            "00".repeat(48),
            "00".repeat(48),
            "00".repeat(48),
            hex::encode(&td.mr_td),
            hex::encode(&td.rtmr[1]),
            hex::encode(&td.rtmr[2]),
        ))
    }

    #[test]
    fn a_pod_is_accepted_only_with_its_pinned_init_data() {
        // trustee tdx_quote_6.dat: MRCONFIGID 889abf47…b150ed67 (SOURCES.md).
        let td = td_of_quote(Q6);
        let mrconfigid = hex::encode(&td.mr_config_id);
        assert!(mrconfigid.starts_with("889abf47") && mrconfigid.ends_with("b150ed67"));
        let image = appraise(&td, None, &coco_policy(&mrconfigid)).unwrap();
        assert_eq!(
            image.profile,
            Profile::Pod {
                init_data: td.mr_config_id
            }
        );
        let d = appraise(&td, None, &coco_policy(&"44".repeat(48))).unwrap_err();
        assert_eq!(d.check, Check::CocoInitData);
        assert_eq!(d.got, format!("MRCONFIGID {mrconfigid}"));
        // Another image altogether: the appliance denial stands.
        let mut other = td.clone();
        other.rtmr[2][0] ^= 1;
        let d = appraise(&other, None, &coco_policy(&mrconfigid)).unwrap_err();
        assert_eq!(d.check, Check::TdxMrtd);
    }
}
