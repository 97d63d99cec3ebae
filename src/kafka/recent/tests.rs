use proptest::prelude::*;

use super::*;

const DEALS: TopicKind = TopicKind::Deals;

fn at(partition: i32, offset: i64) -> Position {
    Position {
        topic: DEALS,
        partition,
        offset,
    }
}

fn offsets(chunk: &RecentChunk) -> Vec<i64> {
    chunk.iter().map(|(offset, _)| offset).collect()
}

#[test]
fn serves_what_it_holds_from_where_live_delivery_started() {
    let recent = RecentRecords::new(1 << 20);
    recent.start_at(DEALS, 0, 10);
    assert!(recent.covers(DEALS, 0, 10));
    assert!(!recent.covers(DEALS, 0, 9), "older records were never seen");
    assert!(!recent.covers(DEALS, 1, 0), "an unknown partition");
    assert!(recent.read(DEALS, 0, 10, 10, 8).unwrap().is_empty());
    for (offset, payload) in [(10, "ten"), (11, "eleven"), (13, "thirteen")] {
        recent.append(at(0, offset), payload.as_bytes());
    }
    let read = recent.read(DEALS, 0, 11, 14, 8).unwrap();
    let records: Vec<(i64, &[u8])> = read.iter().collect();
    assert_eq!(records, [(11, &b"eleven"[..]), (13, b"thirteen")]);
    let first_two = recent.read(DEALS, 0, 10, 14, 2).unwrap();
    assert_eq!(offsets(&first_two), [10, 11]);
    assert_eq!(first_two.last_offset(), Some(11));
    assert_eq!(recent.read(DEALS, 0, 10, 15, 8), None, "14 is not read yet");
}

#[test]
fn a_stretch_stepped_over_is_held_with_nothing_in_it() {
    let recent = RecentRecords::new(1 << 20);
    recent.start_at(DEALS, 0, 0);
    recent.append(at(0, 0), b"zero");
    assert_eq!(recent.read(DEALS, 0, 0, 3, 8), None, "not read up to 3 yet");
    // A commit marker at 1, an aborted record at 2 (seen by nobody).
    recent.skip_to(DEALS, 0, 3);
    assert_eq!(offsets(&recent.read(DEALS, 0, 0, 3, 8).unwrap()), [0]);
    assert!(recent.read(DEALS, 0, 1, 3, 8).unwrap().is_empty());
    recent.skip_to(DEALS, 0, 2);
    recent.append(at(0, 3), b"three");
    assert_eq!(offsets(&recent.read(DEALS, 0, 0, 4, 8).unwrap()), [0, 3]);
}

#[test]
fn evicts_the_oldest_full_segment_of_the_node_first() {
    // Segments of 100 bytes: each record below fills one.
    let recent = RecentRecords::new(1600);
    let record = [7u8; 100];
    for offset in 0..5 {
        recent.append(at(0, offset), &record);
        recent.append(at(1, offset), &record);
    }
    for offset in 5..9 {
        recent.append(at(0, offset), &record);
    }
    assert_eq!(recent.bytes(), 14 * (100 + INDEX_BYTES));
    assert!(recent.covers(DEALS, 0, 0) && recent.covers(DEALS, 1, 0));
    recent.append(at(0, 9), &record);
    assert!(!recent.covers(DEALS, 0, 0), "partition 0's oldest went");
    assert!(recent.covers(DEALS, 0, 1));
    assert!(recent.covers(DEALS, 1, 0), "partition 1 kept its oldest");
    assert_eq!(recent.read(DEALS, 0, 0, 10, 8), None);
    recent.append(at(0, 10), &record);
    assert!(!recent.covers(DEALS, 1, 0), "then partition 1's oldest");
    let rest = recent.read(DEALS, 0, 1, 11, 100).unwrap();
    assert_eq!(offsets(&rest), (1..11).collect::<Vec<_>>());
}

#[test]
fn starting_over_drops_what_no_longer_joins_up() {
    let recent = RecentRecords::new(1 << 20);
    recent.append(at(0, 1), b"a");
    recent.append(at(0, 2), b"b");
    recent.start_at(DEALS, 0, 40);
    assert_eq!(recent.bytes(), 0);
    assert!(!recent.covers(DEALS, 0, 2));
    recent.append(at(0, 40), b"c");
    // A record read again after a seek back restarts the partition there.
    recent.append(at(0, 30), b"d");
    assert!(!recent.covers(DEALS, 0, 29));
    assert_eq!(offsets(&recent.read(DEALS, 0, 30, 31, 8).unwrap()), [30]);
    assert_eq!(recent.bytes(), SEGMENT_BYTES + INDEX_BYTES);
}

#[test]
fn records_read_before_the_assignment_is_recorded_are_kept() {
    let recent = RecentRecords::new(1 << 20);
    recent.append(at(0, 10), b"a");
    recent.append(at(0, 11), b"b");
    recent.start_at(DEALS, 0, 10);
    assert_eq!(
        offsets(&recent.read(DEALS, 0, 10, 12, 8).unwrap()),
        [10, 11]
    );
    recent.start_at(DEALS, 0, 12);
    assert!(recent.covers(DEALS, 0, 10), "12 joins up with what is held");
    // Assigned at 8 while 10 was the first record read: 8 and 9 were never
    // seen here, so coverage does not reach down to them.
    recent.start_at(DEALS, 0, 8);
    assert!(!recent.covers(DEALS, 0, 8));
    assert!(recent.covers(DEALS, 0, 10));
}

#[test]
fn a_record_read_again_within_what_is_held_starts_over_there() {
    let recent = RecentRecords::new(1 << 20);
    for offset in 10..13 {
        recent.append(at(0, offset), b"x");
    }
    recent.append(at(0, 11), b"y");
    assert!(!recent.covers(DEALS, 0, 10));
    let read = recent.read(DEALS, 0, 11, 12, 8).unwrap();
    assert_eq!(read.iter().collect::<Vec<_>>(), [(11, &b"y"[..])]);
}

#[test]
fn a_zero_budget_holds_nothing() {
    let recent = RecentRecords::new(0);
    recent.start_at(DEALS, 0, 0);
    recent.append(at(0, 0), b"a");
    assert!(!recent.covers(DEALS, 0, 0));
    assert_eq!(recent.read(DEALS, 0, 0, 1, 8), None);
}

proptest! {
    /// Whatever it answers is exactly what was appended in that range, it
    /// never answers for less than the whole range, and it stays within its
    /// budget but for the segments being filled.
    #[test]
    fn answers_only_with_the_whole_truth(
        steps in prop::collection::vec((0..3i32, -2..4i64, 1..200usize), 1..300),
        budget in 0..6_000usize,
        queries in prop::collection::vec((0..3i32, 0..400i64, 0..60i64), 1..20),
    ) {
        let recent = RecentRecords::new(budget);
        let mut appended: Vec<Vec<(i64, usize)>> = vec![Vec::new(); 3];
        let mut next = [0i64; 3];
        for (partition, gap, len) in steps {
            // A gap below 1 reads an earlier record again (a seek back).
            let offset = (next[partition as usize] + gap - 1).max(0);
            next[partition as usize] = offset + 1;
            appended[partition as usize].retain(|(o, _)| *o < offset);
            let payload: Vec<u8> = (0..len).map(|i| (offset as usize + i) as u8).collect();
            recent.append(at(partition, offset), &payload);
            appended[partition as usize].push((offset, len));
            let filling = 3 * recent.segment_bytes.max(200) * (1 + INDEX_BYTES);
            prop_assert!(recent.bytes() <= budget + filling);
        }
        for (partition, from, len) in queries {
            let to = from + len;
            let Some(read) = recent.read(DEALS, partition, from, to, usize::MAX) else {
                continue;
            };
            prop_assert!(recent.covers(DEALS, partition, from));
            let expected: Vec<(i64, usize)> = appended[partition as usize]
                .iter()
                .copied()
                .filter(|(o, _)| (from..to).contains(o))
                .collect();
            let got: Vec<(i64, usize)> = read.iter().map(|(o, p)| (o, p.len())).collect();
            prop_assert_eq!(got, expected);
            for (offset, payload) in read.iter() {
                prop_assert!(payload.iter().enumerate().all(|(i, b)| *b == (offset as usize + i) as u8));
            }
        }
    }
}
