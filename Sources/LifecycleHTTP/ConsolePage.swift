import Foundation

/// `/`: the console, `Console/console.html` as compiled into the binary. It is a constant:
/// serving it reads nothing of the pipeline, and the page's data come from the JSON
/// endpoints that read the status board.
enum ConsolePage {
    static let noncePlaceholder = "__CSP_NONCE__"

    /// The page split at its nonce placeholders, once.
    private static let parts = String(decoding: PackageResources.console_html, as: UTF8.self)
        .components(separatedBy: noncePlaceholder)

    /// The page with a fresh nonce in its inline style and script, and the headers that let
    /// only those run and load nothing but this port's own endpoints.
    static func response() -> (html: String, headers: [(String, String)]) {
        var random = SystemRandomNumberGenerator()
        let nonce = Data((0..<16).map { _ in UInt8.random(in: .min ... .max, using: &random) }).base64EncodedString()
        let policy = [
            "default-src 'none'", "script-src 'nonce-\(nonce)'", "style-src 'nonce-\(nonce)'", "connect-src 'self'",
            "form-action 'self'", "base-uri 'none'", "frame-ancestors 'none'",
        ].joined(separator: "; ")
        return (parts.joined(separator: nonce), [
            ("Content-Security-Policy", policy), ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer"),
        ])
    }
}
