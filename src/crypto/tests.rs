//! Cross-module tests of the crypto contract: round trips, column binding (S-07),
//! tampering, unknown keys, rotation, wrong master key, blind index, redacted Debug.

use super::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use time::macros::datetime;
use time::Duration;

const NOW: time::OffsetDateTime = datetime!(2025-03-01 12:00:00 UTC);

fn master(byte: u8) -> EnvMasterKey {
    EnvMasterKey::from_base64(&STANDARD.encode([byte; 32])).unwrap()
}

fn col(column: &str) -> ColumnPath {
    ColumnPath::new("default", "public", "customers", column).unwrap()
}

fn keyring() -> (KeyringFile, Keyring) {
    let file = KeyringFile::generate(&master(1), NOW).unwrap();
    let ring = file.unlock(&master(1)).unwrap();
    (file, ring)
}

#[test]
fn round_trip() {
    let (_, ring) = keyring();
    for value in ["123-45-6789", "", "Zoë 🙂", &"x".repeat(10_000)] {
        let stored = encrypt(&ring, value.as_bytes(), &col("ssn")).unwrap();
        assert!(looks_encrypted(&stored));
        assert!(!stored.contains(value) || value.is_empty());
        let plain = decrypt(&ring, &stored, &col("ssn")).unwrap();
        assert_eq!(plain.as_slice(), value.as_bytes());
    }
}

#[test]
fn s07_ciphertext_moved_to_another_column_does_not_decrypt() {
    let (_, ring) = keyring();
    let stored = encrypt(&ring, b"123-45-6789", &col("ssn")).unwrap();
    let err = decrypt(&ring, &stored, &col("name")).unwrap_err();
    assert!(matches!(err, CipherError::Tampered { .. }), "{err:?}");
    for other in [
        ColumnPath::new("staging", "public", "customers", "ssn").unwrap(),
        ColumnPath::new("default", "archive", "customers", "ssn").unwrap(),
        ColumnPath::new("default", "public", "customers_old", "ssn").unwrap(),
    ] {
        assert!(matches!(
            decrypt(&ring, &stored, &other),
            Err(CipherError::Tampered { .. })
        ));
    }
    // The error message names neither the value nor the stored text.
    let text = err.to_string();
    assert!(!text.contains("6789") && !text.contains(&stored), "{text}");
}

#[test]
fn tampering_any_payload_byte_is_tampered() {
    let (_, ring) = keyring();
    let stored = encrypt(&ring, b"123-45-6789", &col("ssn")).unwrap();
    let (head, payload) = stored.rsplit_once(':').unwrap();
    let bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
    for i in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut altered = bytes.clone();
            altered[i] ^= flip;
            let text = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&altered));
            assert!(
                matches!(
                    decrypt(&ring, &text, &col("ssn")),
                    Err(CipherError::Tampered { .. })
                ),
                "byte {i}"
            );
        }
    }
    // Truncated or extended payloads.
    for len in 28..bytes.len() {
        let text = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&bytes[..len]));
        assert!(matches!(
            decrypt(&ring, &text, &col("ssn")),
            Err(CipherError::Tampered { .. })
        ));
    }
}

#[test]
fn any_text_change_is_an_error() {
    let (_, ring) = keyring();
    let stored = encrypt(&ring, b"123-45-6789", &col("ssn")).unwrap();
    for i in 0..stored.len() {
        for replacement in ['A', 'z', '0', '-', ':', ' '] {
            let mut text: Vec<char> = stored.chars().collect();
            if text[i] == replacement {
                continue;
            }
            text[i] = replacement;
            let text: String = text.into_iter().collect();
            assert!(
                decrypt(&ring, &text, &col("ssn")).is_err(),
                "{i} {replacement:?}"
            );
        }
    }
    for end in 0..stored.len() {
        assert!(decrypt(&ring, &stored[..end], &col("ssn")).is_err());
    }
}

#[test]
fn unknown_key_id_is_unknown_key() {
    let (_, ring) = keyring();
    let stored = encrypt(&ring, b"v", &col("ssn")).unwrap();
    let payload = stored.rsplit(':').next().unwrap();
    let err = decrypt(&ring, &format!("pgv1:k99-0000:{payload}"), &col("ssn")).unwrap_err();
    assert_eq!(
        err,
        CipherError::UnknownKey {
            id: "k99-0000".into()
        }
    );
}

#[test]
fn malformed_values_are_malformed_never_a_panic() {
    let (_, ring) = keyring();
    for text in [
        "",
        "123-45-6789",
        "pgv1:",
        "pgv1:k1:",
        "pgv1:k1:!!!!",
        "pgv1:k1:AAAA",
    ] {
        assert!(matches!(
            decrypt(&ring, text, &col("ssn")),
            Err(CipherError::Malformed(_))
        ));
    }
    let err = decrypt(&ring, "123-45-6789", &col("ssn")).unwrap_err();
    assert!(!err.to_string().contains("6789"));
}

#[test]
fn nonces_differ_for_the_same_plaintext() {
    let (_, ring) = keyring();
    let mut nonces = std::collections::HashSet::new();
    for _ in 0..200 {
        let stored = encrypt(&ring, b"same", &col("ssn")).unwrap();
        let env = envelope::Envelope::parse(&stored).unwrap();
        assert!(nonces.insert(env.nonce().to_vec()));
    }
}

#[test]
fn rotation_keeps_old_values_readable_and_uses_the_new_key() {
    let (mut file, ring) = keyring();
    let old_id = ring.active_id().to_owned();
    let old = encrypt(&ring, b"before", &col("ssn")).unwrap();
    let new_id = file.rotate(&master(1), NOW + Duration::days(1)).unwrap();
    assert_ne!(new_id, old_id);
    assert_eq!(file.active, new_id);
    assert_eq!(file.keys.len(), 2);
    let file = KeyringFile::from_json(&file.to_json().unwrap()).unwrap();
    let ring = file.unlock(&master(1)).unwrap();
    assert_eq!(ring.active_id(), new_id);
    assert_eq!(
        decrypt(&ring, &old, &col("ssn")).unwrap().as_slice(),
        b"before"
    );
    let new = encrypt(&ring, b"after", &col("ssn")).unwrap();
    assert_eq!(key_id_of(&new), Some(new_id.as_str()));
    assert_eq!(key_id_of(&old), Some(old_id.as_str()));
    assert_eq!(
        decrypt(&ring, &new, &col("ssn")).unwrap().as_slice(),
        b"after"
    );
    let listed = file.list().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(!listed[0].active && listed[1].active);
}

#[test]
fn wrong_master_key_is_a_clear_error_and_rotation_refuses() {
    let (mut file, _) = keyring();
    let id = file.active.clone();
    let err = file.unlock(&master(2)).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot unwrap key {id}: wrong master key?")
    );
    let before = file.clone();
    assert!(file.rotate(&master(2), NOW).is_err());
    assert_eq!(file, before);
}

#[test]
fn keyring_file_validation() {
    let (file, _) = keyring();
    let json = file.to_json().unwrap();
    assert!(json.contains("\"version\": 1"));
    assert!(KeyringFile::from_json(&json.replace("\"version\": 1", "\"version\": 2")).is_err());
    assert!(KeyringFile::from_json("{}").is_err());
    assert!(KeyringFile::from_json("not json").is_err());
    let mut bad = file.clone();
    bad.active = "nope".into();
    assert!(matches!(bad.validate(), Err(KeyringError::NoActive { .. })));
    assert!(
        bad.to_json().is_err(),
        "an invalid keyring is never serialized"
    );
    let mut bad = file.clone();
    bad.keys.push(bad.keys[0].clone());
    assert!(matches!(
        bad.validate(),
        Err(KeyringError::DuplicateId { .. })
    ));
    let mut bad = file.clone();
    bad.keys[0].created_at = "yesterday".into();
    assert!(matches!(
        bad.validate(),
        Err(KeyringError::CreatedAt { .. })
    ));
    let mut bad = file.clone();
    bad.keys[0].id = "k:1".into();
    assert!(matches!(bad.validate(), Err(KeyringError::BadId { .. })));
    let mut extra: serde_json::Value = serde_json::from_str(&json).unwrap();
    extra["material"] = "x".into();
    assert!(KeyringFile::from_json(&extra.to_string()).is_err());
    // A relabelled key (id changed in the file) does not unwrap.
    let mut relabelled = file.clone();
    relabelled.keys[0].id = "k7-0000".into();
    relabelled.active = "k7-0000".into();
    assert!(relabelled.unlock(&master(1)).is_err());
}

#[test]
fn keyring_file_holds_no_key_material_in_the_clear() {
    let key = [0x5au8; 32];
    let wrapped = master(1).wrap_key("k1", &key).unwrap();
    assert!(!wrapped.windows(32).any(|w| w == key));
    let (file, _) = keyring();
    assert_eq!(file.keys[0].created_at, "2025-03-01T12:00:00Z");
}

#[test]
fn rotation_warnings_after_the_period() {
    let (file, _) = keyring();
    let period = DEFAULT_ROTATION_PERIOD;
    assert!(file.rotation_warnings(NOW, period).is_empty());
    assert!(file
        .rotation_warnings(NOW + Duration::days(90), period)
        .is_empty());
    let warnings = file.rotation_warnings(NOW + Duration::days(91), period);
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains(&file.active) && warnings[0].contains("91 days"));
    assert!(warnings[0].contains("keys rotate"));
    assert_eq!(
        file.rotation_warnings(NOW - Duration::days(1), period)
            .len(),
        1
    );
}

#[test]
fn blind_index_is_stable_per_column_and_differs_across_columns_and_keys() {
    let (mut file, ring) = keyring();
    let ssn = ring.blind_index_key(&col("ssn"));
    let a = ssn.index(b"123-45-6789");
    assert_eq!(a, ring.blind_index_key(&col("ssn")).index(b"123-45-6789"));
    assert_eq!(a.len(), 64);
    assert_ne!(a, ssn.index(b"123-45-6780"));
    assert_ne!(a, ring.blind_index_key(&col("name")).index(b"123-45-6789"));
    // Same column, same data key, after unlocking again: identical.
    let again = file.unlock(&master(1)).unwrap();
    assert_eq!(a, again.blind_index_key(&col("ssn")).index(b"123-45-6789"));
    // Another keyring (other data key): different.
    let (_, other) = keyring();
    assert_ne!(a, other.blind_index_key(&col("ssn")).index(b"123-45-6789"));
    // After rotation: writes use the new key, searches try every key, active first.
    file.rotate(&master(1), NOW).unwrap();
    let rotated = file.unlock(&master(1)).unwrap();
    let new = rotated.blind_index_key(&col("ssn")).index(b"123-45-6789");
    assert_ne!(new, a);
    let all: Vec<String> = rotated
        .blind_index_keys(&col("ssn"))
        .iter()
        .map(|k| k.index(b"123-45-6789"))
        .collect();
    assert_eq!(all, vec![new, a]);
}

#[test]
fn hash_mask_is_stable_across_rotation() {
    let (mut file, ring) = keyring();
    let before = mask::apply(
        crate::policy::Mask::Hash,
        "123-45-6789",
        ring.hash_mask_key(),
    );
    file.rotate(&master(1), NOW).unwrap();
    let ring = file.unlock(&master(1)).unwrap();
    let after = mask::apply(
        crate::policy::Mask::Hash,
        "123-45-6789",
        ring.hash_mask_key(),
    );
    assert_eq!(before, after);
}

#[test]
fn debug_output_contains_no_key_bytes() {
    let material = [0xc3u8; 32];
    let data = DataKey::from_material(zeroize::Zeroizing::new(material));
    let column = col("ssn");
    let (_, ring) = keyring();
    let texts = [
        format!("{data:?}"),
        format!("{:?}", data.blind_index_key(&column)),
        format!("{:?}", data.hash_mask_key()),
        format!("{ring:?}"),
        format!("{:?}", master(0xc3)),
    ];
    let forbidden = [
        "195".to_owned(),  // decimal byte, as a derived Debug of [u8; 32] prints
        "c3c3".to_owned(), // hex
        STANDARD.encode(&material[..9]), // base64
    ];
    for text in &texts {
        assert!(text.contains("redacted"), "{text}");
        for f in &forbidden {
            assert!(!text.to_lowercase().contains(&f.to_lowercase()), "{text}");
        }
    }
}
