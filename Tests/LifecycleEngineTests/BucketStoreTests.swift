@testable import LifecycleEngine
import Testing

private typealias F = Fixture

/// The 4-byte bucket slab against a plain dictionary of (counter, bucket) → value.
@Suite("Bucket store")
struct BucketStoreTests {
    /// A count and a sum at 1-minute buckets over 30 days, and three triggers' firings: 16
    /// offset bits and 2 counter bits (the counters and the firings' own) leave a 14-bit value.
    static let layout = BucketStore.Layout(
        resolutions: [F.minute, F.minute], windows: [30 * F.day, 30 * F.day], signed: [false, true], triggers: 3)!

    struct Key: Hashable { var counter: Int, bucket: Int64 }

    static func contents(_ store: BucketStore, _ run: BucketStore.Run) -> [Key: UInt32] {
        var found: [Key: UInt32] = [:]
        store.forEach(run) { counter, bucket, value in
            #expect(found.updateValue(value, forKey: Key(counter: counter, bucket: bucket)) == nil, "one entry per key")
        }
        return found
    }

    /// Firing lifetimes for `layout`'s three triggers that keep every firing.
    static let keepFirings = [Int64](repeating: .max, count: 3)

    /// Sweeps as the engine does, with `now` chosen so that buckets before `bucketHorizon`
    /// (1-minute buckets, 30-day windows) and firings before `firingHorizon` go; returns the sums.
    static func sweep(
        _ store: inout BucketStore, _ run: inout BucketStore.Run, bucketHorizon: Int64, firingHorizon: Int64 = .min
    ) -> [Double] {
        let now = bucketHorizon * F.minute + 30 * F.day
        let lifetime = firingHorizon == .min ? Int64.max : now - firingHorizon + 1
        var sums = [0.0, 0.0]
        store.firingLifetimes = [Int64](repeating: lifetime, count: 3)
        sums.withUnsafeMutableBufferPointer { store.sweep(&run, now: now, into: $0) }
        return sums
    }

    static func sums(_ model: [Key: UInt32]) -> [Double] {
        var sums = [0.0, 0.0]
        for (key, value) in model { sums[key.counter] += key.counter == 1 ? Double(Int32(bitPattern: value)) : Double(value) }
        return sums
    }

    @Test("the layout leaves a 14-bit value here; counts past it and sums of any size keep their exact values")
    func wideValues() {
        #expect(Self.layout.valueBits == 14 && Self.layout.offsetBits == 16 && Self.layout.counterBits == 2)
        var store = BucketStore(layout: Self.layout, firingLifetimes: Self.keepFirings)
        var run: BucketStore.Run = 0
        let bucket = F.t0 / F.minute
        for _ in 0..<40_000 { store.add(to: &run, counter: 0, bucket: bucket) { ($0 ?? 0) + 1 } }
        for amount: Int32 in [-1, -8_191, -8_192, 2_000_000_000, -2_100_000_000] {
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

    @Test("random adds, firings, sweeps and clears across many users match dictionaries; freed slots are zero", arguments: [1, 2, 3])
    func modelled(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var store = BucketStore(layout: Self.layout, firingLifetimes: Self.keepFirings)
        var runs = [BucketStore.Run](repeating: 0, count: 50)
        var models = [[Key: UInt32]](repeating: [:], count: 50)
        var firings = [[Int: Int64]](repeating: [:], count: 50)
        // Buckets move forward over time; a run spans less than the window, as the engine keeps it.
        var now = F.t0 / F.minute
        for step in 0..<30_000 {
            now += Int64(rng.next() % 30)
            let user = Int(rng.next() % 50)
            switch rng.next() % 20 {
            case 0:
                store.clear(&runs[user])
                models[user] = [:]
                firings[user] = [:]
            case 1, 2:
                let horizon = now - Int64(rng.next() % UInt64(20 * F.day / F.minute))
                let firingHorizon = (now - Int64(rng.next() % UInt64(20 * F.day / F.minute))) * F.minute
                let sums = Self.sweep(&store, &runs[user], bucketHorizon: horizon, firingHorizon: firingHorizon)
                models[user] = models[user].filter { $0.key.bucket >= horizon }
                firings[user] = firings[user].filter { $0.value >= firingHorizon }
                #expect(sums == Self.sums(models[user]))
            case 3, 4:
                let trigger = Int(rng.next() % 3)
                let time = now * F.minute + Int64(rng.next() % 60_000)
                store.setFiring(&runs[user], trigger: trigger, time: time)
                firings[user][trigger] = time
            default:
                let horizon = now - 29 * F.day / F.minute
                _ = Self.sweep(&store, &runs[user], bucketHorizon: horizon)
                models[user] = models[user].filter { $0.key.bucket >= horizon }
                let key = Key(counter: Int(rng.next() % 2), bucket: now - Int64(rng.next() % UInt64(28 * F.day / F.minute)))
                let delta = rng.next() % 4 == 0 ? UInt32(rng.next() % 100_000) : UInt32(rng.next() % 3)
                store.add(to: &runs[user], counter: key.counter, bucket: key.bucket) { ($0 ?? 0) &+ delta }
                models[user][key, default: 0] &+= delta
            }
            if step % 1_000 == 0 || step == 29_999 {
                for user in 0..<50 {
                    #expect(Self.contents(store, runs[user]) == models[user], "user \(user) at step \(step)")
                    var kept: [Int: Int64] = [:]
                    store.forEachFiring(runs[user]) { kept[$0] = $1 }
                    #expect(kept == firings[user], "user \(user) at step \(step)")
                    #expect((0..<3).map { store.lastFiring(runs[user], trigger: $0) } == (0..<3).map { firings[user][$0] })
                    #expect(store.isValid(runs[user]))
                }
                let slab = store.slabUse(of: runs)
                #expect(slab.slots == 1 + slab.inRuns + slab.free, "every slot but the first is in a run or free, once")
                #expect(slab.holdingEntries == runs.reduce(0) { $0 + ($1 == 0 ? 0 : BucketStore.used($1) + 1) })
            }
        }
        for user in 0..<50 { store.clear(&runs[user]) }
        #expect(store.storage.allSatisfy { $0 == 0 }, "an emptied store holds no values")
    }

    @Test("a run that empties out moves down its size classes, so users busy in turn share the slab's slots")
    func shrinking() {
        var store = BucketStore(layout: Self.layout, firingLifetimes: Self.keepFirings)
        var runs = [BucketStore.Run](repeating: 0, count: 20)
        var minute = F.t0 / F.minute
        for user in 0..<20 {
            // A busy stretch of 40 buckets, then all but the newest leave the window.
            for _ in 0..<40 {
                minute += 1
                store.add(to: &runs[user], counter: 0, bucket: minute) { ($0 ?? 0) + 1 }
            }
            #expect(BucketStore.capacity(ofClass: BucketStore.sizeClass(runs[user])) == 48)
            #expect(Self.sweep(&store, &runs[user], bucketHorizon: minute) == [1, 0])
            // Two slots (base and entry): two classes above their tight fit of 2.
            #expect(BucketStore.capacity(ofClass: BucketStore.sizeClass(runs[user])) == 4)
            store.add(to: &runs[user], counter: 0, bucket: minute) { ($0 ?? 0) + 1 }
            #expect(Self.contents(store, runs[user]) == [Key(counter: 0, bucket: minute): 2])
            #expect(store.isValid(runs[user]))
        }
        // The reserved slot, one climb through the classes (2 + 3 + ... + 48 = 155 slots) and
        // the users' small runs. Keeping each user's busiest class took over 1,000.
        #expect(store.storage.count <= 1 + 155 + 20 * 4 + 48)
    }

    @Test("a free run two or four classes up serves the runs of a class whose free list is empty, without growing the slab")
    func splitting() {
        var store = BucketStore(layout: Self.layout, firingLifetimes: Self.keepFirings)
        var minute = F.t0 / F.minute
        // One user climbs to 48 slots and is erased: one free run of each class up to 48.
        var first: BucketStore.Run = 0
        for _ in 0..<40 {
            minute += 1
            store.add(to: &first, counter: 0, bucket: minute) { _ in 1 }
        }
        store.clear(&first)
        let slab = store.storage.count
        // Seven users of 10 buckets (12 slots): the free 12, the halves of the free 24 and the
        // quarters of the free 48. The smaller classes they pass through come free as they grow.
        var runs = [BucketStore.Run](repeating: 0, count: 7)
        for user in runs.indices {
            for offset in 0..<10 { store.add(to: &runs[user], counter: 0, bucket: minute + Int64(offset)) { _ in UInt32(user + 1) } }
            #expect(BucketStore.capacity(ofClass: BucketStore.sizeClass(runs[user])) == 12)
        }
        #expect(store.storage.count == slab)
        for user in runs.indices {
            #expect(Self.contents(store, runs[user]) == Dictionary(uniqueKeysWithValues: (0..<10).map {
                (Key(counter: 0, bucket: minute + Int64($0)), UInt32(user + 1))
            }))
        }
        let use = store.slabUse(of: runs)
        #expect(use.slots == 1 + use.inRuns + use.free)
    }

    @Test("a run moved by its sweep is added to where it went; entries that come and go do not move a run each time")
    func shrinkingEdges() {
        var store = BucketStore(layout: Self.layout, firingLifetimes: Self.keepFirings)
        let minute = F.t0 / F.minute
        // Three firings, then a bucket at the run's base minute: its key is 0, as is every
        // slot a moved run leaves behind, so an add guided by where it was would go astray.
        var run: BucketStore.Run = 0
        for trigger in 0..<3 { store.setFiring(&run, trigger: trigger, time: minute * F.minute) }
        store.add(to: &run, counter: 0, bucket: minute) { ($0 ?? 0) + 1 }
        let before = run
        #expect(Self.sweep(&store, &run, bucketHorizon: minute, firingHorizon: (minute + 1) * F.minute) == [1, 0])
        #expect(BucketStore.offset(run) != BucketStore.offset(before), "the sweep moved the run")
        store.add(to: &run, counter: 0, bucket: minute) { ($0 ?? 0) + 1 }
        #expect(Self.contents(store, run) == [Key(counter: 0, bucket: minute): 2])

        // Seven buckets that stay, and two firings (six slots) that each sweep drops.
        var busy: BucketStore.Run = 0
        for offset in 0..<7 { store.add(to: &busy, counter: 1, bucket: minute + Int64(offset)) { _ in 1 } }
        for round in 0..<5 {
            let time = (minute + 10 + Int64(round)) * F.minute
            for trigger in 0..<2 { store.setFiring(&busy, trigger: trigger, time: time) }
            let grown = busy
            _ = Self.sweep(&store, &busy, bucketHorizon: minute, firingHorizon: time + 1)
            if round > 0 {
                #expect(BucketStore.offset(busy) == BucketStore.offset(grown), "round \(round): the run stays where it grew")
                #expect(BucketStore.sizeClass(busy) == BucketStore.sizeClass(grown))
            }
            #expect(store.entryCount(busy) == 7)
        }
    }

    @Test("bucket numbers by multiplying with a reciprocal equal those of a division, up to 2^48 ms")
    func reciprocalDivision() {
        var rng = SplitMix64(seed: 7)
        for resolution: Int64 in [F.minute, 90_000, F.hour, 7 * F.hour + 13, F.day, 30 * F.day, 1 << 40] {
            let layout = BucketStore.Layout(resolutions: [resolution], windows: [resolution], signed: [false], triggers: 0)!
            let counter = 0
            let edges: [Int64] = [0, 1, resolution - 1, resolution, resolution + 1, (1 << 48) - 1, ((1 << 48) - 1) / resolution * resolution]
            for time in edges + (0..<20_000).map({ _ in Int64(rng.next() % (1 << 48)) }) {
                #expect(layout.bucket(of: time, counter: counter) == time / resolution, "\(time) / \(resolution)")
            }
        }
    }

    @Test("a bucket older than the run's base, or beyond its reach, rebases the run without changing a value")
    func rebasing() {
        let layout = BucketStore.Layout(resolutions: [F.hour], windows: [F.day], signed: [false], triggers: 1)!
        var store = BucketStore(layout: layout, firingLifetimes: [.max])
        var run: BucketStore.Run = 0
        let bucket = F.t0 / F.hour
        store.add(to: &run, counter: 0, bucket: bucket) { _ in 7 }
        store.add(to: &run, counter: 0, bucket: bucket - 20) { _ in 70_000_000 }  // older: the base moves back
        store.add(to: &run, counter: 0, bucket: bucket - 21) { _ in 3 }
        #expect(Self.contents(store, run) == [Key(counter: 0, bucket: bucket): 7, Key(counter: 0, bucket: bucket - 20): 70_000_000,
                                             Key(counter: 0, bucket: bucket - 21): 3])
        var sums = [0.0]
        sums.withUnsafeMutableBufferPointer { store.sweep(&run, now: F.t0 + F.day, into: $0) }
        #expect(sums == [7])
        store.add(to: &run, counter: 0, bucket: bucket + 25) { _ in 1 }  // beyond the old base's reach
        #expect(Self.contents(store, run) == [Key(counter: 0, bucket: bucket): 7, Key(counter: 0, bucket: bucket + 25): 1])
    }

    @Test("a snapshot's slab round-trips; a run reaching past the slab or into a class that does not exist is invalid")
    func snapshots() throws {
        var store = BucketStore(layout: Self.layout, firingLifetimes: Self.keepFirings)
        var run: BucketStore.Run = 0
        store.add(to: &run, counter: 0, bucket: 100) { _ in 1 }
        store.add(to: &run, counter: 1, bucket: 101) { _ in 1_000_000 }
        var writer = SnapshotWriter()
        store.write(to: &writer)
        var reader = SnapshotReader(writer.finish())
        let read = try BucketStore(from: &reader, layout: Self.layout, firingLifetimes: Self.keepFirings)
        #expect(Self.contents(read, run) == Self.contents(store, run))
        #expect(read.isValid(run))
        #expect(!read.isValid(run + (UInt64(read.storage.count) << 32)))
        #expect(!read.isValid(run | 0xFF))
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
        let fits = try F.rules(counters: [century] + fine.prefix(2))
        #expect(fits.bucketLayout.valueBits == 4)
    }
}
