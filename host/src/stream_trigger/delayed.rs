//! The delayed set: where an entry waits when its handler asked for it to be tried again later.
//! A sorted set beside the stream (`<stream>.delayed`), scored by when each entry is due by the
//! Redis server's clock, so a delay outlives the host that set it and holds no handler slot.
//! Every consumer of every group on the stream moves the entries whose time has come back to
//! the end of the stream, carrying two fields the host reads and hides from handlers: the
//! attempts made at the entry ([`ATTEMPTS_FIELD`]) and the group that asked for the retry
//! ([`GROUP_FIELD`]). Other groups reading the stream acknowledge such an entry without running
//! it: they handled it when it was first added.

use super::consumer::Consumer;
use super::handling::Delayed;
use super::held_entries::Attempt;
use super::reply::{Fields, RawEntry};
use super::{ATTEMPTS_FIELD, GROUP_FIELD};

/// Adds an entry to the delayed set (`KEYS[2]`), due `ARGV[3]` ms from now by the server's
/// clock, then acknowledges it in the stream (`KEYS[1]`, group `ARGV[1]`, id `ARGV[2]`): only
/// while consumer `ARGV[5]` still holds it (else another consumer claimed it since, and that
/// one decides; 0 is returned). The member packs the entry's id, the attempts made (`ARGV[4]`),
/// the group and its fields (from `ARGV[6]`): the id keeps two entries with the same fields
/// apart. A script stops at its first failing call, so an entry the set refused stays pending
/// instead of being lost.
const DELAY_SCRIPT: &str = r"
local held = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[5])
if #held == 0 then return 0 end
local time = redis.call('TIME')
local due = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + tonumber(ARGV[3])
local member = {ARGV[2], ARGV[4], ARGV[1]}
for i = 6, #ARGV do member[#member + 1] = ARGV[i] end
redis.call('ZADD', KEYS[2], due, cmsgpack.pack(member))
return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
";

/// Moves up to `ARGV[1]` entries of the delayed set (`KEYS[1]`) that are due back to the
/// stream (`KEYS[2]`), each with the fields `ARGV[2]` (its attempts so far) and `ARGV[3]` (its
/// group) first. A member the stream refuses (a key of another type, a Lua limit) is put an
/// hour later instead of blocking the ones behind it. Returns how many it moved and how many it
/// could not.
const MOVE_DUE_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local moved, refused = 0, 0
for _, member in ipairs(due) do
  local entry = cmsgpack.unpack(member)
  local add = {'XADD', KEYS[2], '*', ARGV[2], entry[2], ARGV[3], entry[3]}
  for i = 4, #entry do add[#add + 1] = entry[i] end
  local added = pcall(function() return redis.call(unpack(add)) end)
  if not added then
    redis.call('ZADD', KEYS[1], now + 3600000, member)
    refused = refused + 1
  else
    redis.call('ZREM', KEYS[1], member)
    moved = moved + 1
  end
end
return {moved, refused}
";

/// How many due entries one round trip moves back at most.
const MOVE_AT_ONCE: usize = 100;

/// The most fields an entry may have to wait in the delayed set: a script passes them to `XADD`
/// as arguments, and Lua takes at most about 8,000 of those at once.
pub(super) const MAX_DELAYED_FIELDS: usize = 3_000;

impl Consumer {
    /// [`DELAY_SCRIPT`] for one entry; one reply.
    pub(super) fn delay_command(&self, pipe: &mut redis::Pipeline, delayed: &Delayed) {
        let command = pipe
            .cmd("EVAL")
            .arg(DELAY_SCRIPT)
            .arg(2)
            .arg(&self.stream)
            .arg(&self.delayed)
            .arg(&self.group)
            .arg(&delayed.id)
            .arg(delayed.delay.as_millis() as u64)
            .arg(delayed.attempts)
            .arg(&self.consumer);
        for (name, value) in &delayed.fields {
            command.arg(name).arg(value);
        }
    }

    /// [`MOVE_DUE_SCRIPT`]; one reply, read by [`Self::log_moved`].
    pub(super) fn move_due_command(&self, pipe: &mut redis::Pipeline) {
        pipe.cmd("EVAL")
            .arg(MOVE_DUE_SCRIPT)
            .arg(2)
            .arg(&self.delayed)
            .arg(&self.stream)
            .arg(MOVE_AT_ONCE)
            .arg(ATTEMPTS_FIELD)
            .arg(GROUP_FIELD);
    }

    /// Logs what a move of due entries could not do.
    pub(super) fn log_moved(&self, reply: Option<redis::RedisResult<redis::Value>>) {
        let result: Option<anyhow::Result<(u64, u64)>> =
            reply.map(|reply| Ok(redis::from_redis_value(reply?)?));
        let problem = match result {
            Some(Ok((_, 0))) | None => return,
            Some(Ok((_, refused))) => format!(
                "could not add {refused} due entries of the delayed set back to the stream; \
                 they are tried again in an hour"
            ),
            Some(Err(error)) => {
                format!(
                    "could not move due entries of the delayed set back to the stream: {error:#}"
                )
            }
        };
        // A component of an older world never delays entries itself: it moves them only for a
        // rolled-back or mixed deployment, and a server that refuses scripts (an ACL) is not
        // its problem worth an error every round trip.
        if self.component.decides_outcomes() {
            tracing::error!(trigger = %self.trigger_id, stream = %self.stream, delayed = %self.delayed, "{problem}");
        } else {
            tracing::debug!(trigger = %self.trigger_id, stream = %self.stream, delayed = %self.delayed, "{problem}");
        }
    }
}

/// Entries back from the delayed set: their attempts go on from those made before the delay.
/// The carried fields are taken out. An entry another group asked to retry is marked
/// [`Fields::ForAnotherGroup`], to be acknowledged unrun. An entry delivered fewer times than it
/// says gets the count it says (plus this delivery), returned to be written to Redis as its
/// delivery count so a host that claims it later counts on from there. A carried count is held
/// below `max_attempts`, so a publisher writing the field cannot keep an entry from its handler.
pub(super) fn carry_attempts(
    entries: &mut [RawEntry],
    group: &str,
    max_attempts: u32,
) -> Vec<Attempt> {
    let mut to_record = Vec::new();
    for entry in entries {
        let Fields::Read(fields) = &mut entry.fields else {
            continue;
        };
        let mut take = |name: &str| {
            let position = fields.iter().position(|(field, _)| field == name)?;
            Some(fields.remove(position).1)
        };
        let (attempts, for_group) = (take(ATTEMPTS_FIELD), take(GROUP_FIELD));
        if for_group.is_some_and(|for_group| for_group != group.as_bytes()) {
            entry.fields = Fields::ForAnotherGroup;
            continue;
        }
        let Some(value) = attempts else {
            continue;
        };
        // A count that is not a number (a publisher wrote the field) counts as none.
        let before: u32 = std::str::from_utf8(&value)
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(0)
            .min(max_attempts.saturating_sub(1));
        let at_least = before.saturating_add(1);
        if entry.deliveries < at_least {
            entry.deliveries = at_least;
            to_record.push((entry.id.clone(), at_least));
        }
    }
    to_record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &str)], deliveries: u32) -> RawEntry {
        RawEntry {
            id: "1-0".into(),
            fields: Fields::Read(
                fields
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
                    .collect(),
            ),
            deliveries,
        }
    }

    fn names(entry: &RawEntry) -> Vec<&str> {
        let Fields::Read(fields) = &entry.fields else {
            panic!("not read")
        };
        fields.iter().map(|(name, _)| name.as_str()).collect()
    }

    #[test]
    fn an_entry_back_from_the_delayed_set_counts_on_from_its_attempts_and_hides_the_field() {
        let mut entries = [
            entry(&[(ATTEMPTS_FIELD, "2"), ("payload", "x")], 1),
            entry(&[("payload", "y")], 1),
            // Claimed after the count was written: Redis's count is ahead already.
            entry(&[(ATTEMPTS_FIELD, "2"), ("payload", "z")], 4),
            entry(&[(ATTEMPTS_FIELD, "many"), ("payload", "w")], 1),
        ];
        let recorded = carry_attempts(&mut entries, "workers", 5);
        assert_eq!(recorded, [("1-0".to_owned(), 3)]);
        assert_eq!(entries[0].deliveries, 3);
        assert_eq!(names(&entries[0]), ["payload"]);
        assert_eq!(entries[1].deliveries, 1);
        assert_eq!(entries[2].deliveries, 4);
        assert_eq!(
            entries[3].deliveries, 1,
            "a count that is not a number is none"
        );
        assert_eq!(names(&entries[3]), ["payload"]);
    }

    #[test]
    fn another_groups_retry_is_not_run_and_a_forged_count_still_leaves_one_attempt() {
        let mut entries = [
            entry(
                &[
                    (ATTEMPTS_FIELD, "1"),
                    (GROUP_FIELD, "billing"),
                    ("payload", "x"),
                ],
                1,
            ),
            entry(
                &[
                    (ATTEMPTS_FIELD, "1"),
                    (GROUP_FIELD, "workers"),
                    ("payload", "y"),
                ],
                1,
            ),
            entry(&[(ATTEMPTS_FIELD, "999"), ("payload", "z")], 1),
        ];
        let recorded = carry_attempts(&mut entries, "workers", 5);
        assert!(matches!(entries[0].fields, Fields::ForAnotherGroup));
        assert_eq!(names(&entries[1]), ["payload"]);
        assert_eq!(entries[1].deliveries, 2);
        assert_eq!(entries[2].deliveries, 5, "its last attempt, not none");
        assert_eq!(recorded, [("1-0".to_owned(), 2), ("1-0".to_owned(), 5)]);
    }
}
