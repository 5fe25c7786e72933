import FuzzSupport
import LifecycleConfig

/// Any text given to the config reader is loaded or refused with a `ConfigError`: never a
/// crash, a hang or a leak.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? ConfigLoader.load(text: text, file: "fuzz.yaml")
    return 0
}

@_cdecl("FuzzConfig_main")
func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runLibFuzzer(argc, argv, fuzzConfig)
}
