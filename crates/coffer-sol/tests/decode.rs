//! `build_transfer`'s bytes checked against a hand-assembled legacy message, and
//! `decode_transfer` refusing everything but one plain transfer from the fee payer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use coffer_sol::{address, build_transfer, decode_transfer, Decoded, SolError, TransferRequest};
use solana_hash::Hash;
use solana_instruction::{AccountMeta, Instruction};
use solana_message::{compiled_instruction::CompiledInstruction, Message};
use solana_pubkey::Pubkey;
use solana_system_interface::instruction as system_instruction;
use solana_system_interface::program::ID as SYSTEM_PROGRAM;

const FROM: [u8; 32] = [0x11; 32];
const TO: [u8; 32] = [0x22; 32];
const HASH: [u8; 32] = [0x33; 32];
const LAMPORTS: u64 = 0x0102_0304_0506_0708;

fn request() -> TransferRequest {
    TransferRequest {
        from: address(&FROM).unwrap(),
        to: address(&TO).unwrap(),
        lamports: LAMPORTS,
        recent_blockhash: bs58::encode(HASH).into_string(),
    }
}

/// The legacy message wire format, written out from the Solana documentation.
fn hand_assembled() -> Vec<u8> {
    let mut m = vec![1, 0, 1]; // header: 1 signature, 0 read-only signed, 1 read-only unsigned
    m.push(3); // compact-u16: 3 account keys
    m.extend_from_slice(&FROM);
    m.extend_from_slice(&TO);
    m.extend_from_slice(&[0u8; 32]); // the system program
    m.extend_from_slice(&HASH);
    m.push(1); // 1 instruction
    m.push(2); // program id index
    m.extend_from_slice(&[2, 0, 1]); // 2 accounts: from, to
    m.push(12); // 12 data bytes
    m.extend_from_slice(&2u32.to_le_bytes()); // SystemInstruction::Transfer
    m.extend_from_slice(&LAMPORTS.to_le_bytes());
    m
}

fn keys() -> (Pubkey, Pubkey, Hash) {
    (
        Pubkey::new_from_array(FROM),
        Pubkey::new_from_array(TO),
        Hash::new_from_array(HASH),
    )
}

fn serialize(m: &Message) -> Vec<u8> {
    bincode::serialize(m).unwrap()
}

#[test]
fn a_built_transfer_is_exactly_the_documented_wire_format() {
    let built = build_transfer(&request()).unwrap();
    assert_eq!(hex(&built), hex(&hand_assembled()));
}

#[test]
fn the_documented_wire_format_decodes_to_the_request() {
    let r = request();
    assert_eq!(
        decode_transfer(&hand_assembled()).unwrap(),
        Decoded {
            from: r.from,
            to: r.to,
            lamports: r.lamports,
            recent_blockhash: r.recent_blockhash,
        }
    );
}

#[test]
fn a_second_instruction_is_refused() {
    let (from, to, hash) = keys();
    let ix = system_instruction::transfer(&from, &to, 5);
    let m = Message::new_with_blockhash(&[ix.clone(), ix], Some(&from), &hash);
    assert_eq!(
        decode_transfer(&serialize(&m)),
        Err(SolError::InstructionCount { got: 2 })
    );
}

#[test]
fn no_instruction_at_all_is_refused() {
    let (from, _, hash) = keys();
    let m = Message::new_with_blockhash(&[], Some(&from), &hash);
    assert_eq!(
        decode_transfer(&serialize(&m)),
        Err(SolError::InstructionCount { got: 0 })
    );
}

#[test]
fn another_program_id_is_refused() {
    let (from, to, hash) = keys();
    let mut ix = system_instruction::transfer(&from, &to, 5);
    let other = Pubkey::new_from_array([0x44; 32]);
    ix.program_id = other;
    let m = Message::new_with_blockhash(&[ix], Some(&from), &hash);
    assert_eq!(
        decode_transfer(&serialize(&m)),
        Err(SolError::NotSystemProgram {
            program_id: other.to_string()
        })
    );
}

#[test]
fn a_second_signer_is_refused() {
    let (from, to, hash) = keys();
    let payer = Pubkey::new_from_array([0x55; 32]);
    let ix = system_instruction::transfer(&from, &to, 5);
    let m = Message::new_with_blockhash(&[ix], Some(&payer), &hash);
    assert_eq!(m.header.num_required_signatures, 2);
    assert_eq!(
        decode_transfer(&serialize(&m)),
        Err(SolError::SignerCount { got: 2 })
    );
}

#[test]
fn a_transfer_whose_source_is_not_the_fee_payer_is_refused() {
    let (source, to, hash) = keys();
    let payer = Pubkey::new_from_array([0x55; 32]);
    let data = bincode::serialize(&system_instruction::SystemInstruction::Transfer { lamports: 5 })
        .unwrap();
    // One signer (the payer); the instruction debits an unsigned account.
    let m = Message::new_with_compiled_instructions(
        1,
        0,
        1,
        vec![payer, source, to, SYSTEM_PROGRAM],
        hash,
        vec![CompiledInstruction::new_from_raw_parts(3, data, vec![1, 2])],
    );
    assert_eq!(
        decode_transfer(&serialize(&m)),
        Err(SolError::SourceNotFeePayer {
            source_address: source.to_string(),
            fee_payer: payer.to_string(),
        })
    );
}

#[test]
fn another_system_instruction_is_refused() {
    let (from, to, hash) = keys();
    let ix = system_instruction::assign(&from, &to);
    let m = Message::new_with_blockhash(&[ix], Some(&from), &hash);
    assert!(matches!(
        decode_transfer(&serialize(&m)),
        Err(SolError::NotTransfer { .. })
    ));
}

#[test]
fn transfer_data_with_extra_bytes_is_refused() {
    let (from, to, hash) = keys();
    let mut ix = system_instruction::transfer(&from, &to, 5);
    ix.data.push(0);
    let m = Message::new_with_blockhash(&[ix], Some(&from), &hash);
    assert!(matches!(
        decode_transfer(&serialize(&m)),
        Err(SolError::NotTransfer { .. })
    ));
}

#[test]
fn a_transfer_with_an_extra_account_is_refused() {
    let (from, to, hash) = keys();
    let mut ix = system_instruction::transfer(&from, &to, 5);
    ix.accounts.push(AccountMeta::new_readonly(
        Pubkey::new_from_array([0x66; 32]),
        false,
    ));
    let m = Message::new_with_blockhash(&[ix], Some(&from), &hash);
    assert!(matches!(
        decode_transfer(&serialize(&m)),
        Err(SolError::NotTransfer { .. })
    ));
}

#[test]
fn an_unused_extra_account_key_is_refused_as_non_canonical() {
    let (from, to, hash) = keys();
    let mut m = Message::new_with_blockhash(
        &[system_instruction::transfer(&from, &to, 5)],
        Some(&from),
        &hash,
    );
    m.account_keys.push(Pubkey::new_from_array([0x77; 32]));
    m.header.num_readonly_unsigned_accounts += 1;
    assert!(matches!(
        decode_transfer(&serialize(&m)),
        Err(SolError::NonCanonical { .. })
    ));
}

#[test]
fn a_read_only_recipient_is_refused_as_non_canonical() {
    let (from, to, hash) = keys();
    let data = bincode::serialize(&system_instruction::SystemInstruction::Transfer { lamports: 5 })
        .unwrap();
    // Keys [from, system, to], the last two read-only: a layout the runtime would refuse.
    let m = Message::new_with_compiled_instructions(
        1,
        0,
        2,
        vec![from, SYSTEM_PROGRAM, to],
        hash,
        vec![CompiledInstruction::new_from_raw_parts(1, data, vec![0, 2])],
    );
    assert!(matches!(
        decode_transfer(&serialize(&m)),
        Err(SolError::NonCanonical { .. })
    ));
}

#[test]
fn an_out_of_range_account_index_is_refused() {
    let mut m = hand_assembled();
    let accounts_at = m.len() - 12 - 1 - 2; // the two account indices of the instruction
    m[accounts_at + 1] = 9;
    assert_eq!(
        decode_transfer(&m),
        Err(SolError::AccountIndexOutOfRange { index: 9, len: 3 })
    );
    let mut m = hand_assembled();
    let program_at = accounts_at - 2;
    m[program_at] = 200;
    assert_eq!(
        decode_transfer(&m),
        Err(SolError::AccountIndexOutOfRange { index: 200, len: 3 })
    );
}

#[test]
fn trailing_bytes_are_refused() {
    for extra in [&[0u8][..], &[1, 2, 3], &[0xFF; 40]] {
        let mut m = hand_assembled();
        m.extend_from_slice(extra);
        assert_eq!(
            decode_transfer(&m),
            Err(SolError::TrailingBytes { count: extra.len() })
        );
    }
}

#[test]
fn every_truncation_is_refused() {
    let m = hand_assembled();
    for len in 0..m.len() {
        assert!(
            matches!(decode_transfer(&m[..len]), Err(SolError::Truncated { .. })),
            "prefix of {len} bytes: {:?}",
            decode_transfer(&m[..len])
        );
    }
}

#[test]
fn a_versioned_message_is_refused() {
    let mut m = hand_assembled();
    m.insert(0, 0x80); // v0 prefix
    assert_eq!(
        decode_transfer(&m),
        Err(SolError::VersionedMessage { prefix: 0x80 })
    );
}

#[test]
fn a_zero_lamport_transfer_is_refused() {
    let mut m = hand_assembled();
    let n = m.len();
    m[n - 8..].copy_from_slice(&0u64.to_le_bytes());
    assert_eq!(decode_transfer(&m), Err(SolError::ZeroAmount));
}

#[test]
fn a_transfer_to_the_fee_payer_itself_is_refused() {
    let mut m = hand_assembled();
    let accounts_at = m.len() - 12 - 1 - 2;
    m[accounts_at + 1] = 0;
    assert!(matches!(
        decode_transfer(&m),
        Err(SolError::SelfTransfer { .. })
    ));
}

#[test]
fn instruction_builders_of_the_sdk_agree_with_ours() {
    // solana-instruction's generic builder with the documented transfer data.
    let (from, to, hash) = keys();
    let mut data = 2u32.to_le_bytes().to_vec();
    data.extend_from_slice(&LAMPORTS.to_le_bytes());
    let ix = Instruction::new_with_bytes(
        SYSTEM_PROGRAM,
        &data,
        vec![AccountMeta::new(from, true), AccountMeta::new(to, false)],
    );
    let m = Message::new_with_blockhash(&[ix], Some(&from), &hash);
    assert_eq!(serialize(&m), build_transfer(&request()).unwrap());
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
