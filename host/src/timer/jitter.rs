//! `jitter`: how long after it is due each tick fires, the same on every host.

use std::time::Duration;

/// How long after it is due the tick at `scheduled_ms` of `trigger_id` fires: less than
/// `jitter`, spread evenly, and the same on every host (a hash of the two, not a random draw),
/// so coordinated hosts all reach for a tick at the same moment.
pub(super) fn jitter_offset(trigger_id: &str, scheduled_ms: u64, jitter: Duration) -> Duration {
    let span = jitter.as_micros() as u64;
    if span == 0 {
        return Duration::ZERO;
    }
    // FNV-1a over the id and the time, then a SplitMix64 finaliser to spread nearby times.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in trigger_id.bytes().chain(scheduled_ms.to_le_bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^= hash >> 31;
    Duration::from_micros(hash % span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticks_jitter_is_stable_below_the_bound_and_spread() {
        let jitter = Duration::from_millis(500);
        let offsets: Vec<Duration> = (0..1_000u64)
            .map(|tick| jitter_offset("every-second", 1_700_000_000_000 + tick * 1000, jitter))
            .collect();
        assert!(offsets.iter().all(|offset| *offset < jitter));
        assert_eq!(
            offsets[7],
            jitter_offset("every-second", 1_700_000_007_000, jitter),
            "the same tick gets the same offset"
        );
        assert_ne!(
            offsets[7],
            jitter_offset("another", 1_700_000_007_000, jitter),
            "another trigger gets its own"
        );
        // Spread: each fifth of the range holds between 15 % and 25 % of the ticks.
        for fifth in 0..5u32 {
            let (low, high) = (jitter * fifth / 5, jitter * (fifth + 1) / 5);
            let count = offsets
                .iter()
                .filter(|offset| (low..high).contains(*offset))
                .count();
            assert!((150..=250).contains(&count), "fifth {fifth}: {count}");
        }
        assert_eq!(
            jitter_offset("every-second", 1, Duration::ZERO),
            Duration::ZERO
        );
    }
}
