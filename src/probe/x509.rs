//! Just enough DER (X.690) to show a server certificate to people: its validity period and
//! subject common name (RFC 5280 section 4.1). Verification is webpki's job; this reads
//! fields for display and for the expiry message only, and gives up (None) on anything odd.

/// One TLV: (tag, contents, rest).
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, &x| (a << 8) | usize::from(x));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The fields shown for a certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields {
    /// Seconds since the epoch.
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
    pub common_name: Option<String>,
}

/// Reads TBSCertificate: [0] version, serial, signature, issuer, validity, subject.
pub fn fields(der: &[u8]) -> Fields {
    read(der).unwrap_or_default()
}

fn read(der: &[u8]) -> Option<Fields> {
    let (_, cert, _) = tlv(der)?;
    let (_, tbs, _) = tlv(cert)?;
    let (tag, _, mut rest) = tlv(tbs)?;
    // The explicit version is optional (v1 certificates have none); then the serial.
    if tag == 0xa0 {
        rest = tlv(rest)?.2;
    }
    let (_, _, rest) = tlv(rest)?; // signature algorithm
    let (_, _, rest) = tlv(rest)?; // issuer
    let (_, validity, rest) = tlv(rest)?;
    let (_, subject, _) = tlv(rest)?;
    let (t1, nb, after) = tlv(validity)?;
    let (t2, na, _) = tlv(after)?;
    Some(Fields {
        not_before: time(t1, nb),
        not_after: time(t2, na),
        common_name: common_name(subject),
    })
}

/// UTCTime (YYMMDDHHMMSSZ, 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ), as seconds
/// since the epoch (the calendar arithmetic is the Plesk module's, which reads DATETIMEs).
fn time(tag: u8, v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?.strip_suffix('Z')?;
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match tag {
        0x17 if s.len() == 12 => {
            let yy: i64 = s[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &s[2..])
        }
        0x18 if s.len() == 14 => (s[..4].parse().ok()?, &s[4..]),
        _ => return None,
    };
    let civil = format!(
        "{year:04}-{}-{} {}:{}:{}",
        &rest[0..2],
        &rest[2..4],
        &rest[4..6],
        &rest[6..8],
        &rest[8..10]
    );
    crate::plesk::values::parse_datetime(civil.as_bytes())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
pub fn format_time(t: i64) -> String {
    format!(
        "{}Z",
        crate::plesk::values::format_datetime(t).replacen(' ', "T", 1)
    )
}

/// The last commonName (OID 2.5.4.3) of a Name: SET OF SEQUENCE { OID, value }.
fn common_name(mut name: &[u8]) -> Option<String> {
    let mut found = None;
    while !name.is_empty() {
        let (_, set, rest) = tlv(name)?;
        name = rest;
        let mut set = set;
        while !set.is_empty() {
            let (_, atv, r) = tlv(set)?;
            set = r;
            let (_, oid, v) = tlv(atv)?;
            if oid == [0x55, 0x04, 0x03] {
                let (_, value, _) = tlv(v)?;
                found = Some(String::from_utf8_lossy(value).into_owned());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip() {
        assert_eq!(time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(
            time(0x18, b"20261204152230Z").map(format_time).as_deref(),
            Some("2026-12-04T15:22:30Z")
        );
        assert_eq!(
            time(0x17, b"240229120000Z").map(format_time).as_deref(),
            Some("2024-02-29T12:00:00Z")
        );
        assert_eq!(time(0x17, b"garbage"), None);
    }

    #[test]
    fn garbage_is_no_fields() {
        assert_eq!(fields(b""), Fields::default());
        assert_eq!(fields(&[0x30, 0x82, 0xff]), Fields::default());
    }
}
