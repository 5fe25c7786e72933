import FuzzSupport
import LifecycleCodec
import LifecycleEngine

/// Any bytes given to the event decoder (simdjson through the C++ shim) are decoded or
/// rejected with a reason; a decoded event is ingested by an engine running rules that
/// read every kind of field. Never a crash or an out-of-bounds read.
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

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEventDecoder(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
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
