@testable import LifecycleEngine
import Testing

private typealias F = Fixture

/// The 4-byte bucket slab against a plain dictionary of (counter, bucket) → value.
@Suite("Bucket store")
struct BucketStoreTests {
    /// A count and a sum at 1-minute buckets over 30 days: 16 offset bits leave a 15-bit value.
    static let layout = BucketStore.Layout(
        resolutions: [F.minute, F.minute], windows: [30 * F.day, 30 * F.day], signed: [false, true])!

    struct Key: Hashable { var counter: Int, bucket: Int64 }

    static func contents(_ store: BucketStore, _ run: BucketStore.Run) -> [Key: UInt32] {
        var found: [Key: UInt32] = [:]
        store.forEach(run) { counter, bucket, value in
            #expect(found.updateValue(value, forKey: Key(counter: counter, bucket: bucket)) == nil, "one entry per key")
        }
        return found
    }

    @Test("the layout leaves a 15-bit value here; counts past it and sums of any size keep their exact values")
    func wideValues() {
        #expect(Self.layout.valueBits == 15 && Self.layout.offsetBits == 16 && Self.layout.counterBits == 1)
        var store = BucketStore(layout: Self.layout)
        var run: BucketStore.Run = 0
        let bucket = F.t0 / F.minute
        for _ in 0..<40_000 { store.add(to: &run, counter: 0, bucket: bucket) { ($0 ?? 0) + 1 } }
        for amount: Int32 in [-1, -16_383, -16_384, 2_000_000_000, -2_100_000_000] {
            store.add(to: &run, counter: 1, bucket: bucket + 1) { _ in UInt32(bitPattern: amount) }
            #expect(Self.contents(store, run)[Key(counter: 1, bucket: bucket + 1)] == UInt32(bitPattern: amount))
        }
        store.add(to: &run, counter: 1, bucket: bucket + 2) { _ in UInt32(bitPattern: Int32(-3)) }
        #expect(Self.contents(store, run) == [
            Key(counter: 0, bucket: bucket): 40_000,
            Key(counter: 1, bucket: bucket + 1): UInt32(bitPattern: -2_100_000_000),
            Key(counter: 1, bucket: bucket + 2): UInt32(bitPattern: Int32(-3)),
        ])
        #expect(store.entryCount(run) == 3)
        #expect(store.isValid(run))
    }

    @Test("random adds, filters and clears across many users match a dictionary; freed slots are zero", arguments: [1, 2, 3])
    func modelled(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var store = BucketStore(layout: Self.layout)
        var runs = [BucketStore.Run](repeating: 0, count: 50)
        var models = [[Key: UInt32]](repeating: [:], count: 50)
        // Buckets move forward over time; a run spans less than the window, as the engine keeps it.
        var now = F.t0 / F.minute
        for step in 0..<30_000 {
            now += Int64(rng.next() % 30)
            let user = Int(rng.next() % 50)
            switch rng.next() % 20 {
            case 0:
                store.clear(&runs[user])
                models[user] = [:]
            case 1, 2:
                let horizon = now - Int64(rng.next() % UInt64(20 * F.day / F.minute))
                store.filter(&runs[user]) { _, bucket, _ in bucket >= horizon }
                models[user] = models[user].filter { $0.key.bucket >= horizon }
            default:
                let horizon = now - 29 * F.day / F.minute
                store.filter(&runs[user]) { _, bucket, _ in bucket >= horizon }
                models[user] = models[user].filter { $0.key.bucket >= horizon }
                let key = Key(counter: Int(rng.next() % 2), bucket: now - Int64(rng.next() % UInt64(28 * F.day / F.minute)))
                let delta = rng.next() % 4 == 0 ? UInt32(rng.next() % 100_000) : UInt32(rng.next() % 3)
                store.add(to: &runs[user], counter: key.counter, bucket: key.bucket) { ($0 ?? 0) &+ delta }
                models[user][key, default: 0] &+= delta
            }
            if step % 1_000 == 0 || step == 29_999 {
                for user in 0..<50 {
                    #expect(Self.contents(store, runs[user]) == models[user], "user \(user) at step \(step)")
                    #expect(store.isValid(runs[user]))
                }
            }
        }
        for user in 0..<50 { store.clear(&runs[user]) }
        #expect(store.storage.allSatisfy { $0 == 0 }, "an emptied store holds no values")
    }

    @Test("a bucket older than the run's base, or beyond its reach, rebases the run without changing a value")
    func rebasing() {
        let layout = BucketStore.Layout(resolutions: [F.hour], windows: [F.day], signed: [false])!
        var store = BucketStore(layout: layout)
        var run: BucketStore.Run = 0
        let bucket = F.t0 / F.hour
        store.add(to: &run, counter: 0, bucket: bucket) { _ in 7 }
        store.add(to: &run, counter: 0, bucket: bucket - 20) { _ in 70_000_000 }  // older: the base moves back
        store.add(to: &run, counter: 0, bucket: bucket - 21) { _ in 3 }
        #expect(Self.contents(store, run) == [Key(counter: 0, bucket: bucket): 7, Key(counter: 0, bucket: bucket - 20): 70_000_000,
                                             Key(counter: 0, bucket: bucket - 21): 3])
        store.filter(&run) { _, bucket, _ in bucket == F.t0 / F.hour }
        store.add(to: &run, counter: 0, bucket: bucket + 25) { _ in 1 }  // beyond the old base's reach
        #expect(Self.contents(store, run) == [Key(counter: 0, bucket: bucket): 7, Key(counter: 0, bucket: bucket + 25): 1])
    }

    @Test("a snapshot's slab round-trips; a run whose wide entry is cut off is invalid")
    func snapshots() throws {
        var store = BucketStore(layout: Self.layout)
        var run: BucketStore.Run = 0
        store.add(to: &run, counter: 0, bucket: 100) { _ in 1 }
        store.add(to: &run, counter: 1, bucket: 101) { _ in 1_000_000 }
        var writer = SnapshotWriter()
        store.write(to: &writer)
        var reader = SnapshotReader(writer.finish())
        let read = try BucketStore(from: &reader, layout: Self.layout)
        #expect(Self.contents(read, run) == Self.contents(store, run))
        let cut = run - (1 << 8)  // one slot fewer used: the wide value is outside the run
        #expect(!read.isValid(cut))
    }

    @Test("rules whose longest window in the finest buckets leaves no room for a value are refused")
    func layoutRefused() throws {
        // A century in day buckets next to 1-minute buckets: offsets of 26 bits.
        let century = CounterRule(name: "century", events: .any, window: 36_500 * F.day, resolution: F.day)
        let fine = (0..<7).map { CounterRule(name: "fine\($0)", events: .any, window: F.minute, resolution: F.minute) }
        #expect {
            try F.rules(counters: [century] + fine)
        } throws: { error in
            "\(error)".contains("does not fit a 4-byte bucket")
        }
        let fits = try F.rules(counters: [century] + fine.prefix(3))
        #expect(fits.bucketLayout.valueBits == 4)
    }
}
