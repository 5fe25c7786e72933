import CSimdJSONBridge
import FuzzSupport
import Glibc
import LifecycleCodec
import LifecycleEngine

/// Any bytes given to the event decoder (the shim's plain reader, or simdjson) are decoded
/// or rejected with a reason; a decoded event is ingested by an engine running rules that
/// read every kind of field. Never a crash or an out-of-bounds read. And a document the
/// plain reader reads, simdjson reads the same, value for value.
private let rules = try! CompiledRules(Rules(
    events: EventFields(maxEventBytes: 4096),
    counters: [
        CounterRule(name: "logins", events: .names([Located("login")]), window: Millis.day),
        CounterRule(name: "revenue", events: .any, window: Millis.day, aggregation: .sum(path: "props.amount")),
    ],
    attributes: [AttributeRule(name: "plan", path: "props.plan")],
    lifecycle: LifecycleRule(
        stages: [Located("new"), Located("active")], initial: Located("new"),
        transitions: [TransitionRule(from: [Located("new")], to: Located("active"), condition: .when(Located("logins >= 2 and plan == 'pro'")))]),
    triggers: [TriggerRule(name: "big", fire: .when(Located("revenue > 100")))],
    eraseOn: [Located("user_deleted")]))
nonisolated(unsafe) private var decoder = EventDecoder(fields: rules.rules.events, propertyPaths: rules.propertyPaths)

private let paths = [rules.rules.events.userID, rules.rules.events.name, rules.rules.events.time] + rules.propertyPaths
    + ["props", "props.deep.x", "tags"]
nonisolated(unsafe) private let reader: OpaquePointer = {
    var cStrings = paths.map { strdup($0) }
    defer { cStrings.forEach { free($0) } }
    return cStrings.withUnsafeMutableBufferPointer { buffer in
        buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { lc_json_reader_new($0.baseAddress, $0.count) }
    }!
}()
nonisolated(unsafe) private let plainValues = UnsafeMutableBufferPointer<lc_json_value>.allocate(capacity: paths.count)
nonisolated(unsafe) private let simdjsonValues = UnsafeMutableBufferPointer<lc_json_value>.allocate(capacity: paths.count)

/// Both reads of one document agree: kinds, integers, numbers to the bit, string bytes.
private func checkPlainReader(_ data: UnsafePointer<UInt8>?, _ size: Int) {
    guard lc_json_reader_read_plain(reader, data, size, plainValues.baseAddress) == 1 else { return }
    let status = lc_json_reader_read_simdjson(reader, data, size, simdjsonValues.baseAddress)
    precondition(status == LC_JSON_OK, "the plain reader read a document simdjson rejects")
    for (plain, reference) in zip(plainValues, simdjsonValues) {
        let bytes = { (value: lc_json_value) in
            value.string.map { Array(UnsafeRawBufferPointer(start: $0, count: value.length)) } ?? []
        }
        precondition(plain.kind == reference.kind && plain.integer == reference.integer
            && plain.number.bitPattern == reference.number.bitPattern && bytes(plain) == bytes(reference),
            "the plain reader and simdjson read different values")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEventDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    checkPlainReader(data, size)
    var engine = PartitionEngine(rules: rules)
    var output = EngineOutput()
    _ = decoder.decode(UnsafeRawBufferPointer(start: data, count: size), fallbackTime: nil) { event in
        engine.ingest(event, into: &output)
    }
    return 0
}

@_cdecl("FuzzEventDecoder_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzEventDecoder)
}
