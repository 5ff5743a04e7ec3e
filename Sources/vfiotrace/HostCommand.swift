import ArgumentParser
import Replay
import Trace

struct HostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Print a host description: the lab's default, what a trace states, or a file checked.",
        discussion: Help.flow("""
        The engine models type1; what depends on the IOMMU hardware under it (the
        domain's page sizes and IOVA ranges, cache coherency, nesting, the driver's
        errno for a mapping past its address width) and two module limits make up the
        host. `replay`, `bisect` and `bisect-check` take it from the trace's own answers
        where it gives them (GET_INFO and CHECK_EXTENSION while an IOMMU-backed group is
        attached), else the lab's defaults (QEMU's emulated VT-d); every engine command
        takes `--host FILE`. This prints the description to start a file from, with a
        comment per key.

        Examples:
          vfiotrace host > lab.host
          vfiotrace host corpora/real/6.12.117+deb12-amd64/qemu-src.vft
          vfiotrace host --check arm-smmu.host
          vfiotrace replay host.vft --host arm-smmu.host
        """)
    )

    @Argument(help: "A trace or scenario whose answers state host traits (over the defaults).", completion: .file(extensions: ["vft", "vfs"]))
    var trace: String?

    @Option(help: ArgumentHelp("Read this host description and print it whole (every key), or say where it is wrong.", valueName: "file"),
            completion: .file())
    var check: String?

    func validate() throws {
        if trace != nil && check != nil { throw ValidationError("give a TRACE or --check FILE, not both") }
    }

    func run() throws {
        var out = OutputBuffer()
        if let check {
            let h = try loadHostDescription(check)
            out.line("# \(check), every key")
            out.lines(h.descriptionText)
        } else if let trace {
            let (h, traits) = try withHostStatingEvents(of: try openInput(trace), checked: true) { HostModel.stated(by: $0) }
            out.line(traits.isEmpty ? "# \(trace) states no host trait: the lab's defaults"
                                    : "# from \(trace): " + traits.joined(separator: ", ") + "; the rest the lab's defaults")
            out.lines(h.descriptionText)
        } else {
            out.line("# The lab's host: QEMU's emulated Intel VT-d on x86_64 (the engine's default)")
            out.lines(HostModel().descriptionText)
        }
        out.flush()
    }
}

/// The record types HostModel.stated reads (the kinds of event that state
/// or change what the host is seen to be).
let hostStatingTypes = RecordTypeSet([.setIOMMU, .groupSetContainer, .groupUnsetContainer, .close, .getInfo, .checkExtension])

/// Calls `body` with the trace's events that can state host traits
/// (``HostModel/stated(by:over:)``), streamed from the input in one pass
/// (a binary trace steps over the rest undecoded; memory does not grow with
/// the trace). A read error met while `body` iterates is thrown after it;
/// with `checked`, so is damage in a binary trace (else the caller's own
/// pass reports it).
func withHostStatingEvents<R>(of input: EventInput, checked: Bool, _ body: (AnySequence<Event>) throws -> R) throws -> R {
    var events: EventIterator
    do { events = try input.events(only: hostStatingTypes) } catch { throw Failure.trouble("\(error)") }
    var failure: Error? = nil
    let result = try body(AnySequence {
        AnyIterator { () -> Event? in
            guard failure == nil else { return nil }
            do { return try nextEvent(&events) } catch { failure = error; return nil }
        }
    })
    if let failure { throw failure }
    if checked { try checkProblems(events) }
    return result
}

/// The host a trace states for a replay, or the one the options give.
func hostStated(by input: EventInput, options: TraceHostOptions) throws -> (HostModel, String) {
    try withHostStatingEvents(of: input, checked: false) { try options.host(for: $0) }
}

extension OutputBuffer {
    /// Each line of `text` (its last newline ends the last line).
    mutating func lines(_ text: String) {
        for l in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0) { line(String(l)) }
    }
}
