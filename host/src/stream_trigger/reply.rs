//! Reading Redis's replies to `XREADGROUP` and `XAUTOCLAIM` into entries, in either protocol
//! version (RESP2 arrays, RESP3 maps); a malformed reply is an error, never a panic. One entry
//! whose fields cannot be read (a field name that is not UTF-8) is that entry's problem, not the
//! reply's: it is read as [`Fields::Unreadable`], to be dead-lettered, and the rest go on.

use anyhow::{Context, bail};

/// One entry as read from the stream.
pub(super) struct RawEntry {
    pub(super) id: String,
    pub(super) fields: Fields,
    /// How many times Redis has delivered it to a consumer of the group, this time included:
    /// 1 for a new entry, more for one read again or claimed ([`parse_delivery_counts`]).
    pub(super) deliveries: u32,
}

/// An entry's fields, as far as they could be read.
pub(super) enum Fields {
    /// Field names and values, in the entry's order.
    Read(Vec<(String, Vec<u8>)>),
    /// Deleted from the stream since it was added: nothing to handle.
    Deleted,
    /// Added back from the delayed set for another consumer group: handled by this group when
    /// it was first added, so nothing to handle.
    ForAnotherGroup,
    /// Fields no handler can be given: the names and values as bytes, and why.
    Unreadable {
        raw: Vec<(Vec<u8>, Vec<u8>)>,
        reason: String,
    },
}

/// `XREADGROUP`'s reply for one stream: `[[stream, [[id, [field, value, ...]], ...]]]`, or nil
/// when the block time passed with nothing new. A RESP3 reply is a map instead of the outer
/// array.
pub(super) fn parse_read_reply(reply: redis::Value) -> anyhow::Result<Vec<RawEntry>> {
    use redis::Value;
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .into_iter()
            .map(|stream| match stream {
                Value::Array(mut pair) if pair.len() == 2 => Ok(pair.remove(1)),
                other => bail!("unexpected stream in the reply: {other:?}"),
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
        Value::Map(streams) => streams.into_iter().map(|(_, entries)| entries).collect(),
        other => bail!("unexpected reply: {other:?}"),
    };
    let mut entries = Vec::new();
    for stream in streams {
        entries.extend(parse_entries(stream)?);
    }
    Ok(entries)
}

/// `XAUTOCLAIM`'s reply: `[next-cursor, [[id, [field, value, ...]], ...], [deleted-id, ...]]`.
pub(super) fn parse_claim_reply(reply: redis::Value) -> anyhow::Result<(String, Vec<RawEntry>)> {
    use redis::Value;
    let Value::Array(parts) = reply else {
        bail!("unexpected reply: {reply:?}");
    };
    let mut parts = parts.into_iter();
    let (Some(cursor), Some(entries)) = (parts.next(), parts.next()) else {
        bail!("the reply lacks the cursor or the entries");
    };
    let cursor: String = redis::from_redis_value(cursor).context("the reply's cursor")?;
    Ok((cursor, parse_entries(entries)?))
}

/// `[[id, [field, value, ...]], ...]`; an entry deleted from the stream has nil fields.
fn parse_entries(entries: redis::Value) -> anyhow::Result<Vec<RawEntry>> {
    use redis::Value;
    let Value::Array(entries) = entries else {
        bail!("unexpected entries: {entries:?}");
    };
    entries
        .into_iter()
        .map(|entry| {
            let Value::Array(parts) = entry else {
                bail!("unexpected entry: {entry:?}");
            };
            let mut parts = parts.into_iter();
            let id: String =
                redis::from_redis_value(parts.next().context("an entry without an id")?)
                    .context("an entry's id")?;
            let fields = match parts.next() {
                None | Some(Value::Nil) => Fields::Deleted,
                Some(Value::Array(flat)) => {
                    if !flat.len().is_multiple_of(2) {
                        bail!("entry {id}: an odd number of field names and values");
                    }
                    let mut flat = flat.into_iter();
                    let mut pairs = Vec::new();
                    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
                        pairs.push((name, value));
                    }
                    read_fields(pairs)
                }
                Some(Value::Map(pairs)) => read_fields(pairs),
                Some(other) => bail!("entry {id}: unexpected fields: {other:?}"),
            };
            Ok(RawEntry {
                id,
                fields,
                deliveries: 1,
            })
        })
        .collect()
}

/// The extended `XPENDING` reply: each entry's id and delivery count.
pub(super) fn parse_delivery_counts(
    reply: redis::Value,
) -> anyhow::Result<std::collections::HashMap<String, u32>> {
    let pending: redis::streams::StreamPendingCountReply =
        redis::from_redis_value(reply).context("unexpected XPENDING reply")?;
    Ok(pending
        .ids
        .into_iter()
        .map(|entry| {
            let count = u32::try_from(entry.times_delivered).unwrap_or(u32::MAX);
            (entry.id, count)
        })
        .collect())
}

/// The fields of one entry: UTF-8 names with byte values, else [`Fields::Unreadable`].
fn read_fields(pairs: Vec<(redis::Value, redis::Value)>) -> Fields {
    let mut raw = Vec::with_capacity(pairs.len());
    let mut problem = None;
    for (name, value) in pairs {
        let (name, value) = match (
            redis::from_redis_value::<Vec<u8>>(name),
            redis::from_redis_value::<Vec<u8>>(value),
        ) {
            (Ok(name), Ok(value)) => (name, value),
            (name, value) => {
                problem.get_or_insert_with(|| "a field name or value that is not a string".into());
                (name.unwrap_or_default(), value.unwrap_or_default())
            }
        };
        if std::str::from_utf8(&name).is_err() {
            problem.get_or_insert_with(|| {
                format!(
                    "the field name {:?} is not UTF-8",
                    String::from_utf8_lossy(&name)
                )
            });
        }
        raw.push((name, value));
    }
    match problem {
        Some(reason) => Fields::Unreadable { raw, reason },
        None => Fields::Read(
            raw.into_iter()
                .map(|(name, value)| (String::from_utf8(name).unwrap_or_default(), value))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::Value;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn a_read_reply_keeps_field_order_and_repeated_fields() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("orders"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![
                        bulk("b"),
                        bulk("2"),
                        bulk("a"),
                        bulk("1"),
                        bulk("b"),
                        bulk("3"),
                    ]),
                ]),
                Value::Array(vec![bulk("1-1"), Value::Nil]),
            ]),
        ])]);
        let entries = parse_read_reply(reply).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].id, "1-0");
        let Fields::Read(fields) = &entries[0].fields else {
            panic!("entry 1-0 was not read");
        };
        assert_eq!(
            fields,
            &[
                ("b".to_owned(), b"2".to_vec()),
                ("a".to_owned(), b"1".to_vec()),
                ("b".to_owned(), b"3".to_vec())
            ]
        );
        assert!(
            matches!(entries[1].fields, Fields::Deleted),
            "a deleted entry has no fields"
        );
        assert!(parse_read_reply(Value::Nil).unwrap().is_empty());
    }

    #[test]
    fn a_claim_reply_gives_the_cursor_and_the_entries() {
        let reply = Value::Array(vec![
            bulk("5-0"),
            Value::Array(vec![Value::Array(vec![
                bulk("2-0"),
                Value::Array(vec![bulk("payload"), bulk("x")]),
            ])]),
            Value::Array(vec![]),
        ]);
        let (cursor, entries) = parse_claim_reply(reply).unwrap();
        assert_eq!(cursor, "5-0");
        assert_eq!(entries[0].id, "2-0");
    }

    #[test]
    fn an_entry_with_a_name_that_is_not_utf8_is_unreadable_and_the_rest_are_read() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("orders"),
            Value::Array(vec![
                Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![Value::BulkString(vec![0xff]), bulk("v")]),
                ]),
                Value::Array(vec![bulk("1-1"), Value::Array(vec![bulk("a"), bulk("1")])]),
            ]),
        ])]);
        let entries = parse_read_reply(reply).unwrap();
        let Fields::Unreadable { raw, reason } = &entries[0].fields else {
            panic!("entry 1-0 was read");
        };
        assert_eq!(raw, &[(vec![0xff], b"v".to_vec())]);
        assert!(reason.contains("not UTF-8"), "{reason}");
        assert!(matches!(&entries[1].fields, Fields::Read(fields) if fields.len() == 1));
        // The same in a RESP3 map.
        let map = Value::Array(vec![Value::Array(vec![
            bulk("2-0"),
            Value::Map(vec![(Value::BulkString(vec![0xc3, 0x28]), bulk("v"))]),
        ])]);
        let entries = parse_entries(map).unwrap();
        assert!(matches!(entries[0].fields, Fields::Unreadable { .. }));
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        assert!(parse_read_reply(Value::Int(3)).is_err());
        assert!(parse_claim_reply(Value::Array(vec![])).is_err());
        let odd = Value::Array(vec![Value::Array(vec![
            bulk("1-0"),
            Value::Array(vec![bulk("a")]),
        ])]);
        assert!(parse_entries(odd).is_err());
    }
}
