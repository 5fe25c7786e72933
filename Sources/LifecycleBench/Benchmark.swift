import Foundation
import Glibc
import LifecycleCodec
import LifecycleConfig
import LifecycleEngine

/// `LifecycleBench throughput|memory|changelog|generate|pipeline|soak [--users N] [--days D] [--config FILE]` (release
/// build). Prints Markdown rows for BENCHMARKS.md; `generate` prints the events as NDJSON.
@main
struct Benchmark {
    /// A failure (a config not found, a cluster that did not start) is said in one line with
    /// exit status 1, not as a crash with a backtrace.
    static func main() {
        do {
            try run()
        } catch {
            note("LifecycleBench: \(error)\n")
            exit(1)
        }
    }

    static func run() throws {
        var arguments = CommandLine.arguments.dropFirst()
        let mode = arguments.popFirst() ?? "throughput"
        var options: [String: String] = [:]
        while let key = arguments.popFirst(), key.hasPrefix("--"), let value = arguments.popFirst() {
            options[String(key.dropFirst(2))] = value
        }
        let configPath = options["config"] ?? "config/lifecycled.yaml"
        let rules = try ConfigLoader.load(path: configPath).compiled
        let users = Int(options["users"] ?? "") ?? 1_000_000
        let days = Int(options["days"] ?? "") ?? 30
        let population = Population(users: users, start: 1_795_392_000_000)
        switch mode {
        case "throughput": try throughput(rules: rules, population: population, days: days, passes: Int(options["passes"] ?? ""))
        case "memory": try memory(rules: rules, population: population, days: days)
        case "generate": generate(population: population, days: days)
        case "changelog": try changelog(rules: rules, population: population, days: days)
        case "pipeline":
            try PipelineBenchmark(config: configPath, population: population, days: days,
                                  rate: Int(options["rate"] ?? "") ?? 50_000,
                                  seconds: Int(options["seconds"] ?? "") ?? 20,
                                  phases: Set((options["phases"] ?? "throughput,latency,pause,rebalance").split(separator: ",").map(String.init)),
                                  workers: (options["workers"] ?? "1,2").split(separator: ",").compactMap { Int($0) },
                                  pauseUsers: Int(options["pause-users"] ?? "") ?? 1_000_000,
                                  kafkaProperties: keyValues(options["kafka-properties"] ?? "")).run()
        case "soak":
            try SoakBenchmark(binary: options["binary"] ?? ".build/release/lifecycled", config: configPath,
                              users: Int(options["users"] ?? "") ?? 200_000, rate: Int(options["rate"] ?? "") ?? 20_000,
                              seconds: 60 * (Double(options["minutes"] ?? "") ?? 30),
                              partitions: Int32(options["partitions"] ?? "") ?? 16,
                              hupSeconds: Double(options["hup-every"] ?? "") ?? 10, killSeconds: Double(options["kill-every"] ?? "") ?? 300,
                              warmUpSeconds: Double(options["warm-up"] ?? "") ?? 300,
                              directory: options["dir"] ?? NSTemporaryDirectory() + "lifecycled-soak").run()
        default:
            note("usage: LifecycleBench throughput|memory|changelog|generate|pipeline|soak [--users N] [--days D] [--config FILE] [throughput: --passes N] [--rate N --seconds S --phases throughput,latency,pause,rebalance --workers 1,2 --pause-users N --kafka-properties k=v,k=v] [soak: --minutes 30 --rate 20000 --partitions 16 --hup-every 10 --kill-every 300 --warm-up 300 --binary .build/release/lifecycled --dir DIR]\n")
            exit(1)
        }
    }

    /// `a=1,b=2` as a dictionary: librdkafka properties to try on the pipeline's clients.
    static func keyValues(_ text: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else {
                note("--kafka-properties: '\(pair)' is not key=value\n")
                exit(1)
            }
            result[String(parts[0])] = String(parts[1])
        }
        return result
    }

    /// Events/s on one core: JSON decoding + engine + trigger encoding, over pre-generated lines.
    static func throughput(rules: CompiledRules, population: Population, days: Int, passes: Int?) throws {
        var text: [UInt8] = []
        var lineEnds: [Int] = []
        var dayEvents: [(time: Int64, user: UInt32, name: UInt8)] = []
        let writer = EventWriter()
        for day in 0..<days {
            population.day(day, into: &dayEvents)
            for event in dayEvents {
                writer.write(time: event.time, user: event.user, name: event.name, into: &text)
                lineEnds.append(text.count)
            }
        }
        let events = lineEnds.count
        note("generated \(events) events (\(text.count / max(events, 1)) bytes each) for \(population.users) users over \(days) days\n")

        // Decoding alone, to show where the time goes.
        var decoder = EventDecoder(fields: rules.rules.events, propertyPaths: rules.propertyPaths)
        var checksum = 0
        let decoding = repeatedPasses(passes) {
            forEachLine(text, lineEnds) { line in
                _ = decoder.decode(line, fallbackTime: nil) { checksum &+= Int($0.time & 1) }
            }
        }

        var encoder = TriggerEncoder()
        var sink: [UInt8] = []
        var users = 0
        var triggers: Int?
        let full = try repeatedPasses(passes) {
            var engine = PartitionEngine(rules: rules)
            var output = EngineOutput()
            var fired = 0
            forEachLine(text, lineEnds) { line in
                _ = decoder.decode(line, fallbackTime: nil) { engine.ingest($0, into: &output) }
                if !output.triggers.isEmpty {
                    for trigger in output.triggers { encoder.encode(trigger, of: output, rules: rules, into: &sink) }
                    fired += output.triggers.count
                    sink.removeAll(keepingCapacity: true)
                    output.removeAll()
                }
            }
            users = engine.userCount
            // Every pass starts from an empty engine, so each must fire the same triggers.
            if let triggers, triggers != fired { throw BenchmarkFailure("pass fired \(fired) triggers, an earlier one \(triggers)") }
            triggers = fired
        }
        print("| events | users | decode only, median (events/s) | decode + engine + encode, median (events/s) | its fastest pass | its first pass | passes (decode only, full) | triggers |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        print("| \(events) | \(users) | \(Int(Double(events) / decoding.median)) | \(Int(Double(events) / full.median)) | "
            + "\(Int(Double(events) / full.fastest)) | \(Int(Double(events) / full.first)) | \(decoding.count), \(full.count) | \(triggers ?? 0) |")
        note("checksum \(checksum)\n")
    }

    /// Runs `pass` `count` times, or if nil until a second has gone (at least 3 times), and
    /// returns the first, median and fastest times. A pass over 1k users takes about 20 ms,
    /// too short to time once on a shared machine: a single pass's rate moved by a quarter
    /// from one run to the next.
    static func repeatedPasses(_ count: Int?, _ pass: () throws -> Void) rethrows -> (first: Double, median: Double, fastest: Double, count: Int) {
        var seconds: [Double] = []
        func enough() -> Bool {
            if let count { return seconds.count >= max(count, 1) }
            return seconds.count >= 3 && seconds.reduce(0, +) >= 1
        }
        while !enough() {
            seconds.append(try measure(pass))
        }
        let first = seconds[0]
        seconds.sort()
        let middle = seconds.count / 2
        let median = seconds.count % 2 == 1 ? seconds[middle] : (seconds[middle - 1] + seconds[middle]) / 2
        return (first, median, seconds[0], seconds.count)
    }

    /// The population's events as NDJSON on stdout, e.g. to time `lifecycled replay`.
    static func generate(population: Population, days: Int) {
        var dayEvents: [(time: Int64, user: UInt32, name: UInt8)] = []
        var buffer: [UInt8] = []
        let writer = EventWriter()
        for day in 0..<days {
            population.day(day, into: &dayEvents)
            for event in dayEvents {
                writer.write(time: event.time, user: event.user, name: event.name, into: &buffer)
                buffer.append(UInt8(ascii: "\n"))
                if buffer.count > 1 << 20 {
                    FileHandle.standardOutput.write(Data(buffer))
                    buffer.removeAll(keepingCapacity: true)
                }
            }
        }
        FileHandle.standardOutput.write(Data(buffer))
    }

    /// Bytes per tracked user: resident memory growth over a month of a population's events.
    static func memory(rules: CompiledRules, population: Population, days: Int) throws {
        let baseline = residentBytes()
        let (engine, events) = engineAfter(days: days, of: population, rules: rules)
        let growth = residentBytes() - baseline
        let users = engine.userCount
        print("| users | events | RSS growth | bytes/user (RSS) | bytes/user (engine allocations) |")
        print("|---:|---:|---:|---:|---:|")
        print("| \(users) | \(events) | \(growth / (1 << 20)) MiB | \(growth / max(users, 1)) | \(engine.allocatedBytes / max(users, 1)) |")
        print("")
        print("Engine allocations per user: " + engine.memoryBreakdown.map { "\($0.part) \($0.bytes / max(users, 1))" }.joined(separator: ", "))
        let slab = engine.bucketSlabUse
        print("\nBucket slab: \(slab.slots) slots; \(slab.inRuns) in runs, \(slab.holdingEntries) of them holding bases and entries; \(slab.free) on free lists")
        try snapshots(of: engine, rules: rules)
    }

    /// Snapshot write and read of the engine, in bytes/s, and the resident memory each needs
    /// beyond what was there before it, as a share of the snapshot's size (which is about
    /// the state's). The write goes to a new buffer (as `snapshot()` does) and then to the
    /// same buffer again (as a worker's checkpoint does); the read builds a second engine.
    static func snapshots(of engine: PartitionEngine, rules: CompiledRules) throws {
        resetPeakResident()
        var base = residentBytes()
        var bytes: [UInt8] = []
        let fresh = measure { bytes = engine.snapshot() }
        let writePeak = peakResidentBytes() - base
        let again = measure {
            var writer = SnapshotWriter(reusing: consume bytes)  // moved, as a worker hands its buffer over
            engine.snapshot(into: &writer)
            bytes = writer.finish()
        }
        resetPeakResident()
        base = residentBytes()
        var restored: PartitionEngine?
        let read = try measure { restored = try PartitionEngine(rules: rules, snapshot: bytes) }
        let readPeak = peakResidentBytes() - base
        let touch = touchNewMemory(byteCount: readPeak)
        let size = Double(bytes.count)
        func rate(_ seconds: Double) -> String { String(format: "%.2f GB/s (%.2f s)", size / seconds / 1e9, seconds) }
        print("")
        print("| snapshot of \(engine.userCount) users | \(bytes.count / (1 << 20)) MiB |")
        print("|---|---:|")
        print("| write, new buffer | \(rate(fresh)) |")
        print("| write, reused buffer | \(rate(again)) |")
        print("| read | \(rate(read)) |")
        print("| peak extra memory, write | \(String(format: "%.2f", Double(writePeak) / size))× the snapshot |")
        print("| peak extra memory, read (the new engine included) | \(String(format: "%.2f", Double(readPeak) / size))× the snapshot |")
        print("| read: new memory made resident per second | \(String(format: "%.2f GB/s", Double(readPeak) / read / 1e9)) |")
        print("| for comparison, one byte written per page of as much new memory | \(String(format: "%.2f GB/s", Double(readPeak) / touch / 1e9)) |")
        note("restored \(restored?.userCount ?? 0) users\n")
    }

    /// Seconds to write one byte per page of `byteCount` new bytes: what this machine takes to
    /// hand a process memory it has not touched before, the bound of a write into a new buffer
    /// and of a read into a new engine. On a virtual machine that backs guest memory lazily it
    /// varies between runs far more than copying does.
    static func touchNewMemory(byteCount: Int) -> Double {
        let count = max(byteCount, 4_096)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 4_096)
        defer { memory.deallocate() }
        let seconds = measure {
            for offset in stride(from: 0, to: count, by: 4_096) { memory.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self) }
        }
        // Read back, so that the writes cannot be dropped as dead.
        var sum = 0
        for offset in stride(from: 0, to: count, by: 4_096) { sum &+= Int(memory.load(fromByteOffset: offset, as: UInt8.self)) }
        note("touched \(sum) pages\n")
        return seconds
    }

    /// Resident memory's high-water mark (VmHWM), in bytes.
    static func peakResidentBytes() -> Int { (statusKilobytes("VmHWM") ?? 0) * 1024 }

    /// A `kB` field of /proc/PROCESS/status (`VmRSS`, `VmHWM`, ...); nil if the process is gone.
    static func statusKilobytes(_ field: String, of process: String = "self") -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
        else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }

    /// Resets the high-water mark to the current resident size (Linux: "5" to clear_refs).
    static func resetPeakResident() {
        guard let file = fopen("/proc/self/clear_refs", "w") else { return }
        fputs("5", file)
        fclose(file)
    }

    /// One engine that saw `days` of the population's events, and how many events that was.
    static func engineAfter(days: Int, of population: Population, rules: CompiledRules) -> (PartitionEngine, events: Int) {
        var dayEvents: [(time: Int64, user: UInt32, name: UInt8)] = []
        dayEvents.reserveCapacity(population.users * 3)
        var line: [UInt8] = []
        line.reserveCapacity(256)
        var decoder = EventDecoder(fields: rules.rules.events, propertyPaths: rules.propertyPaths)
        var engine = PartitionEngine(rules: rules)
        var output = EngineOutput()
        let writer = EventWriter()
        var events = 0
        for day in 0..<days {
            population.day(day, into: &dayEvents)
            for event in dayEvents {
                line.removeAll(keepingCapacity: true)
                writer.write(time: event.time, user: event.user, name: event.name, into: &line)
                line.withUnsafeBytes { bytes in
                    _ = decoder.decode(bytes, fallbackTime: nil) { engine.ingest($0, into: &output) }
                }
                output.removeAll()
            }
            events += dayEvents.count
            note("day \(day + 1)/\(days): \(events) events, \(engine.userCount) users\n")
        }
        return (engine, events)
    }

    static func forEachLine(_ text: [UInt8], _ ends: [Int], _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        try text.withUnsafeBytes { raw in
            var start = 0
            for end in ends {
                try body(UnsafeRawBufferPointer(rebasing: raw[start..<end]))
                start = end
            }
        }
    }

    static func measure(_ body: () throws -> Void) rethrows -> Double {
        let clock = ContinuousClock()
        let elapsed = try clock.measure(body)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// Resident set size from /proc/self/statm (second field, in pages).
    static func residentBytes() -> Int {
        guard let file = fopen("/proc/self/statm", "r") else { return 0 }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 128)
        guard fgets(&buffer, 128, file) != nil else { return 0 }
        let fields = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self).split(separator: " ")
        guard fields.count >= 2, let pages = Int(fields[1]) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// Progress goes to standard error so stdout holds only the Markdown rows.
func note(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}

/// A benchmark that cannot go on, said in one line.
struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
