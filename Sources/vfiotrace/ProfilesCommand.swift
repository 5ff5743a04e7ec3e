import ArgumentParser
import Replay

struct ProfilesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profiles",
        abstract: "List the engine's kernel profiles, show one, or compare two.",
        discussion: Help.flow("""
        A profile is a set of named switches, one per kernel behaviour that changed
        between versions; each switch's doc comment in KernelProfile.swift names the
        commit. `--profile auto` picks the newest released preset not newer than a
        trace's kernel.

        Examples:
          vfiotrace profiles
          vfiotrace profiles --show 5.8
          vfiotrace profiles --compare 5.8 5.12
        """)
    )

    @Option(help: "Print every switch of this profile.")
    var show: Named<KernelProfile>?

    @Option(parsing: .upToNextOption, help: "Print the switches that differ between two profiles.")
    var compare: [Named<KernelProfile>] = []

    func validate() throws {
        for n in compare + (show.map { [$0] } ?? []) { _ = try n.checked() }
        if !compare.isEmpty && compare.count != 2 { throw ValidationError("--compare takes two profile names") }
        if show != nil && !compare.isEmpty { throw ValidationError("give --show NAME or --compare A B, not both") }
    }

    func run() throws {
        var out = OutputBuffer()
        if let p = show?.value {
            out.line("\(p.name): \(p.summary)")
            for s in p.switches { out.line("  \(s.name) = \(s.value)") }
        } else if compare.count == 2, let a = compare[0].value, let b = compare[1].value {
            let diffs = zip(a.switches, b.switches).filter { $0.0.value != $0.1.value }
            if diffs.isEmpty { out.line("\(a.name) and \(b.name) behave the same") }
            for (x, y) in diffs { out.line("  \(x.name): \(a.name) \(x.value), \(b.name) \(y.value)") }
        } else {
            for p in KernelProfile.presets { out.line(p.name + String(repeating: " ", count: max(1, 8 - p.name.count)) + p.summary) }
        }
        out.flush()
    }
}
