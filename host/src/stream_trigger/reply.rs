//! Reading Redis's replies to `XREADGROUP` and `XAUTOCLAIM` into entries, in either protocol
//! version (RESP2 arrays, RESP3 maps); a malformed reply is an error, never a panic.

use anyhow::{Context, bail};

/// One entry as read from the stream: `None` fields for an entry deleted since it was added.
pub(super) struct RawEntry {
    pub(super) id: String,
    pub(super) fields: Option<Vec<(String, Vec<u8>)>>,
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
                None | Some(Value::Nil) => None,
                Some(Value::Array(flat)) => Some(field_pairs(flat)?),
                Some(Value::Map(pairs)) => Some(
                    pairs
                        .into_iter()
                        .map(|(name, value)| {
                            Ok((
                                redis::from_redis_value(name)?,
                                redis::from_redis_value(value)?,
                            ))
                        })
                        .collect::<Result<Vec<_>, redis::ParsingError>>()?,
                ),
                Some(other) => bail!("entry {id}: unexpected fields: {other:?}"),
            };
            Ok(RawEntry { id, fields })
        })
        .collect()
}

fn field_pairs(flat: Vec<redis::Value>) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    anyhow::ensure!(
        flat.len().is_multiple_of(2),
        "an odd number of field names and values"
    );
    let mut flat = flat.into_iter();
    let mut pairs = Vec::new();
    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
        pairs.push((
            redis::from_redis_value(name).context("a field name")?,
            redis::from_redis_value(value).context("a field value")?,
        ));
    }
    Ok(pairs)
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
        assert_eq!(
            entries[0].fields.as_deref().unwrap(),
            [
                ("b".to_owned(), b"2".to_vec()),
                ("a".to_owned(), b"1".to_vec()),
                ("b".to_owned(), b"3".to_vec())
            ]
        );
        assert!(entries[1].fields.is_none(), "a deleted entry has no fields");
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
