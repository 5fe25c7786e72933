import LifecycleEngine
import Testing

@Suite("Sliding windows")
struct WindowTests {
    typealias F = Fixture

    func countRules(window: Int64 = 7 * Fixture.day, resolution: Int64? = nil) throws -> CompiledRules {
        try F.rules(counters: [CounterRule(name: "c", events: F.names("x"), window: window, resolution: resolution)])
    }

    @Test("an event counts until the end of its bucket leaves the window")
    func bucketEdges() throws {
        var h = Harness(try countRules(window: 2 * F.hour, resolution: F.hour))
        h.send("u", "x", at: F.t0 + 10 * F.minute)  // bucket [t0, t0+1h)
        h.advance(to: F.t0 + 3 * F.hour - 1)
        #expect(h.counter("c", of: "u") == 1)  // bucket end t0+1h > now-2h
        h.advance(to: F.t0 + 3 * F.hour)
        #expect(h.counter("c", of: "u") == 0)  // bucket end == now-2h: out
    }

    @Test("events in the same and in neighbouring buckets add up")
    func neighbouringBuckets() throws {
        var h = Harness(try countRules(window: 2 * F.hour, resolution: F.hour))
        h.send("u", "x", at: F.t0)
        h.send("u", "x", at: F.t0 + F.hour - 1)
        h.send("u", "x", at: F.t0 + F.hour)
        h.send("u", "y", at: F.t0 + F.hour)  // not a counted event
        #expect(h.counter("c", of: "u") == 3)
        h.advance(to: F.t0 + 3 * F.hour)
        #expect(h.counter("c", of: "u") == 1)
        h.advance(to: F.t0 + 4 * F.hour)
        #expect(h.counter("c", of: "u") == 0)
    }

    @Test("distinct days count UTC days with activity, not events")
    func distinctDays() throws {
        var h = Harness(try F.rules(counters: [CounterRule(name: "days", events: .any, window: 3 * F.day, aggregation: .distinctDays)]))
        h.send("u", "a", at: F.t0 + 1 * F.hour)
        h.send("u", "b", at: F.t0 + 20 * F.hour)  // same day
        h.send("u", "a", at: F.t0 + F.day + 5)   // day 2
        h.send("u", "a", at: F.t0 + 2 * F.day + 5)  // day 3
        #expect(h.counter("days", of: "u") == 3)
        h.advance(to: F.t0 + 4 * F.day)  // day 1 ends at t0+1d == now-3d: out
        #expect(h.counter("days", of: "u") == 2)
    }

    @Test("sums add a numeric field and ignore events without it")
    func sums() throws {
        var h = Harness(try F.rules(counters: [
            CounterRule(name: "revenue", events: F.names("purchase"), window: F.day, aggregation: .sum(path: "props.amount")),
        ]))
        h.send("u", "purchase", at: F.t0, ["props.amount": .number(9.5)])
        h.send("u", "purchase", at: F.t0 + 1, ["props.amount": .number(20.25)])
        h.send("u", "purchase", at: F.t0 + 2, ["props.amount": .string("12")])
        h.send("u", "purchase", at: F.t0 + 3)
        #expect(h.counter("revenue", of: "u") == 29.75)
        h.advance(to: F.t0 + F.day + F.hour)
        #expect(h.counter("revenue", of: "u") == 0)
    }

    @Test("a late event inside the allowed lateness lands in its own bucket")
    func lateWithinLateness() throws {
        var h = Harness(try F.rules(
            counters: [CounterRule(name: "c", events: F.names("x"), window: 2 * F.hour, resolution: F.hour)],
            lateness: 30 * F.minute))
        h.send("other", "x", at: F.t0 + 2 * F.hour + 10 * F.minute)  // stream time
        #expect(h.send("u", "x", at: F.t0 + 2 * F.hour - 15 * F.minute) == .applied)  // 25 min late
        #expect(h.counter("c", of: "u") == 1)
        // It sits in bucket [t0+1h, t0+2h), so it leaves the window at t0+4h, not an hour later.
        h.advance(to: F.t0 + 4 * F.hour - 1)
        #expect(h.counter("c", of: "u") == 1)
        h.advance(to: F.t0 + 4 * F.hour)
        #expect(h.counter("c", of: "u") == 0)
    }

    @Test("an event later than the allowed lateness is counted and dropped")
    func lateBeyondLateness() throws {
        var h = Harness(try F.rules(
            counters: [CounterRule(name: "c", events: F.names("x"), window: F.day)], lateness: 30 * F.minute))
        h.send("other", "x", at: F.t0 + F.hour)
        #expect(h.send("u", "x", at: F.t0 + 30 * F.minute - 1) == .late)
        #expect(h.send("u", "x", at: F.t0 + 30 * F.minute) == .applied)  // exactly at the limit
        #expect(h.counter("c", of: "u") == 1)
        #expect(h.engine.stats.eventsLate == 1)
    }

    @Test("property: bucketed counts stay within one bucket of the exact sliding count", arguments: [1, 2, 3, 4, 5])
    func bucketErrorBound(seed: UInt64) throws {
        let window = 6 * F.hour
        let resolution = 20 * F.minute
        var h = Harness(try F.rules(
            counters: [CounterRule(name: "c", events: F.names("x"), window: window, resolution: resolution)],
            lateness: 0))
        var rng = SplitMix64(seed: seed)
        var times: [Int64] = []
        var now = F.t0
        for _ in 0..<2_000 {
            now += Int64(rng.next() % UInt64(10 * F.minute))
            if rng.next() % 3 == 0 {
                h.advance(to: now)
            } else {
                h.send("u", "x", at: now)
                times.append(now)
            }
            let bucketed = h.counter("c", of: "u") ?? 0
            // Documented bound: exact count over (now - window, now] <= bucketed <= exact count
            // over (now - window - resolution, now].
            let exact = times.filter { $0 > now - window }.count
            let widened = times.filter { $0 > now - window - resolution }.count
            #expect(Double(exact) <= bucketed && bucketed <= Double(widened), "at \(now - F.t0): \(exact) <= \(bucketed) <= \(widened)")
        }
    }
}
