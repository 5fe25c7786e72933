import ServiceLifecycle
import UnixSignals

/// Raises a flag each time a Unix signal arrives (SIGHUP's rule reload): the loop checks it
/// between steps, so the work it asks for happens on the loop's own thread.
public struct SignalForwardingService: Service, CustomStringConvertible {
    public let signal: UnixSignal
    public let flag: SignalFlag

    public init(signal: UnixSignal, to flag: SignalFlag) {
        self.signal = signal
        self.flag = flag
    }

    public var description: String { "forwarding \(signal)" }

    public func run() async {
        for await _ in await UnixSignalsSequence(trapping: signal).cancelOnGracefulShutdown() {
            flag.request()
        }
    }
}
