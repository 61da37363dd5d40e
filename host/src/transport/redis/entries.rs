//! Stream entries as Redis answers them (`XREAD`, `XREADGROUP`,
//! `XAUTOCLAIM`), parsed straight from the reply without trusting what
//! other writers put there: anything odd is skipped, never a panic.

use redis::Value;

/// One stream entry: its id and its fields, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The entry id.
    pub id: String,
    /// Its fields; `None` when the entry is gone from the stream (a pending
    /// entry deleted since it was delivered).
    pub fields: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

impl RawEntry {
    /// The value of field `name`, if the entry has it.
    pub fn field(&self, name: &str) -> Option<&[u8]> {
        field(self.fields.as_deref(), name)
    }
}

/// The value of field `name` among `fields`.
pub fn field<'a>(fields: Option<&'a [(Vec<u8>, Vec<u8>)]>, name: &str) -> Option<&'a [u8]> {
    fields?
        .iter()
        .find(|(field, _)| field == name.as_bytes())
        .map(|(_, value)| value.as_slice())
}

/// The streams of an `XREAD`/`XREADGROUP` answer: `[[key, entries], …]` (or
/// a map of key → entries, in RESP3), each with its entries.
pub fn streams(reply: Value) -> Vec<(Vec<u8>, Vec<RawEntry>)> {
    let streams: Vec<(Value, Value)> = match reply {
        Value::Array(streams) => streams
            .into_iter()
            .filter_map(|stream| match stream {
                Value::Array(pair) if pair.len() == 2 => {
                    let mut pair = pair.into_iter();
                    Some((pair.next()?, pair.next()?))
                }
                _ => None,
            })
            .collect(),
        Value::Map(streams) => streams,
        _ => Vec::new(),
    };
    streams
        .into_iter()
        .filter_map(|(key, items)| Some((bytes(key)?, entries(items))))
        .collect()
}

/// The entries of a list `[[id, [field, value, …]], …]`.
pub fn entries(items: Value) -> Vec<RawEntry> {
    let Value::Array(items) = items else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(parts) = item else {
                return None;
            };
            let mut parts = parts.into_iter();
            let id = String::from_utf8(bytes(parts.next()?)?).ok()?;
            let fields = match parts.next() {
                Some(Value::Array(flat)) => Some(pairs(flat)),
                Some(Value::Map(map)) => Some(
                    map.into_iter()
                        .filter_map(|(k, v)| Some((bytes(k)?, bytes(v)?)))
                        .collect(),
                ),
                _ => None,
            };
            Some(RawEntry { id, fields })
        })
        .collect()
}

fn pairs(flat: Vec<Value>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::with_capacity(flat.len() / 2);
    let mut flat = flat.into_iter();
    while let (Some(name), Some(value)) = (flat.next(), flat.next()) {
        if let (Some(name), Some(value)) = (bytes(name), bytes(value)) {
            out.push((name, value));
        }
    }
    out
}

/// The bytes of a string-like reply.
pub fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        Value::VerbatimString { text, .. } => Some(text.into_bytes()),
        Value::Int(i) => Some(i.to_string().into_bytes()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn read_answers_parse_and_odd_items_are_skipped() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("s1"),
                Value::Array(vec![
                    Value::Array(vec![
                        bulk("1-1"),
                        Value::Array(vec![bulk("report"), bulk("x"), bulk("odd")]),
                    ]),
                    Value::Array(vec![bulk("1-2"), Value::Nil]),
                    Value::Int(7),
                ]),
            ]),
            Value::Array(vec![bulk("only the key")]),
        ]);
        let streams = streams(reply);
        assert_eq!(streams.len(), 1);
        let (key, entries) = &streams[0];
        assert_eq!(key, b"s1");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].field("report"), Some(&b"x"[..]));
        assert_eq!(entries[0].field("odd"), None);
        assert_eq!(entries[1].fields, None);
        assert_eq!(entries[1].field("report"), None);
        assert!(super::streams(Value::Nil).is_empty());
    }

    #[test]
    fn resp3_maps_parse() {
        let reply = Value::Map(vec![(
            bulk("s1"),
            Value::Array(vec![Value::Array(vec![
                bulk("2-0"),
                Value::Map(vec![(bulk("job"), bulk("{}"))]),
            ])]),
        )]);
        let streams = streams(reply);
        assert_eq!(streams[0].1[0].field("job"), Some(&b"{}"[..]));
    }
}
