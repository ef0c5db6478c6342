//! The delayed set: where an entry waits when its handler asked for it to be tried again later.
//! A sorted set beside the stream (`<stream>.delayed`), scored by when each entry is due by the
//! Redis server's clock, so a delay outlives the host that set it and holds no handler slot.
//! Every consumer of the group moves the entries whose time has come back to the end of the
//! stream, where the group reads them as new entries, carrying the attempts made at them in a
//! field ([`ATTEMPTS_FIELD`]) the host reads and hides from handlers.

use super::ATTEMPTS_FIELD;
use super::consumer::Consumer;
use super::handling::Delayed;
use super::held_entries::Attempt;
use super::reply::{Fields, RawEntry};

/// Adds an entry to the delayed set (`KEYS[2]`), due `ARGV[3]` ms from now by the server's
/// clock, then acknowledges it in the stream (`KEYS[1]`, group `ARGV[1]`, id `ARGV[2]`). The
/// member packs the entry's id, the attempts made (`ARGV[4]`) and its fields (from `ARGV[5]`):
/// the id keeps two entries with the same fields apart. A script stops at its first failing
/// call, so an entry the set refused stays pending instead of being lost.
const DELAY_SCRIPT: &str = r"
local time = redis.call('TIME')
local due = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + tonumber(ARGV[3])
local member = {ARGV[2], ARGV[4]}
for i = 5, #ARGV do member[#member + 1] = ARGV[i] end
redis.call('ZADD', KEYS[2], due, cmsgpack.pack(member))
return redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
";

/// Moves up to `ARGV[1]` entries of the delayed set (`KEYS[1]`) that are due back to the
/// stream (`KEYS[2]`), each with the field `ARGV[2]` holding its attempts so far, first. A
/// member the stream refuses (a key of another type) is put an hour later instead of blocking
/// the ones behind it. Returns how many it moved and how many it could not.
const MOVE_DUE_SCRIPT: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local moved, refused = 0, 0
for _, member in ipairs(due) do
  local entry = cmsgpack.unpack(member)
  local add = {'XADD', KEYS[2], '*', ARGV[2], entry[2]}
  for i = 3, #entry do add[#add + 1] = entry[i] end
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
            .arg(delayed.attempts);
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
            .arg(ATTEMPTS_FIELD);
    }

    /// Logs what a move of due entries could not do.
    pub(super) fn log_moved(&self, reply: Option<redis::RedisResult<redis::Value>>) {
        let result: Option<anyhow::Result<(u64, u64)>> =
            reply.map(|reply| Ok(redis::from_redis_value(reply?)?));
        match result {
            Some(Ok((_, 0))) | None => {}
            Some(Ok((_, refused))) => tracing::error!(
                trigger = %self.trigger_id,
                stream = %self.stream,
                delayed = %self.delayed,
                "could not add {refused} due entries of the delayed set back to the stream; \
                 they are tried again in an hour"
            ),
            Some(Err(error)) => tracing::error!(
                trigger = %self.trigger_id,
                stream = %self.stream,
                delayed = %self.delayed,
                "could not move due entries of the delayed set back to the stream: {error:#}"
            ),
        }
    }
}

/// Entries back from the delayed set: their attempts go on from those made before the delay.
/// The carried count is taken out of the fields; an entry delivered fewer times than it says
/// gets the count it says (plus this delivery), returned to be written to Redis as its
/// delivery count so a host that claims it later counts on from there.
pub(super) fn carry_attempts(entries: &mut [RawEntry]) -> Vec<Attempt> {
    let mut to_record = Vec::new();
    for entry in entries {
        let Fields::Read(fields) = &mut entry.fields else {
            continue;
        };
        let Some(position) = fields.iter().position(|(name, _)| name == ATTEMPTS_FIELD) else {
            continue;
        };
        let (_, value) = fields.remove(position);
        // A count that is not a number (a publisher wrote the field) counts as none.
        let before: u32 = std::str::from_utf8(&value)
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(0);
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
        let recorded = carry_attempts(&mut entries);
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
}
