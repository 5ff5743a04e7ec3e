import CVFIO
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// The system calls the real-VFIO backend makes: opening nodes, ioctls,
/// closing, and what sysfs says about groups. Behind a protocol so that the
/// backend's own bookkeeping (binding trace groups to real ones, trace fd
/// numbers to real fds, the memory behind mappings) can be tested without
/// root or a device; ``LinuxVFIOHost`` is the real one.
public protocol VFIOHost: AnyObject {
    /// The running kernel's release.
    var kernelRelease: String { get }
    /// `open(path, O_RDWR | O_CLOEXEC)`: a real fd or the errno.
    func open(_ path: String) -> Result<Int32, PosixError>
    /// `close(fd)`: nil or the errno.
    func close(_ fd: Int32) -> PosixError?
    /// `ioctl(fd, request, arg)`: the non-negative return or the errno.
    func ioctl(_ fd: Int32, _ request: UInt, _ arg: UnsafeMutableRawPointer?) -> Result<Int32, PosixError>
    /// How the group behind a node (`/dev/vfio/N`) reaches memory.
    func groupKind(ofNode node: String) -> GroupKind
    /// The devices in the group behind an open group fd.
    func devices(inGroupOfFD fd: Int32) -> [String]?
}

/// This machine's VFIO.
public final class LinuxVFIOHost: VFIOHost {
    public let kernelRelease = Posix.uname().release

    public init() {}

    public func open(_ path: String) -> Result<Int32, PosixError> {
        let fd = Glibc.open(path, O_RDWR | O_CLOEXEC)
        return fd < 0 ? .failure(PosixError(errno)) : .success(fd)
    }

    public func close(_ fd: Int32) -> PosixError? {
        Glibc.close(fd) == 0 ? nil : PosixError(errno)
    }

    public func ioctl(_ fd: Int32, _ request: UInt, _ arg: UnsafeMutableRawPointer?) -> Result<Int32, PosixError> {
        var err: Int32 = 0
        let r = cvfio_ioctl(fd, request, arg, &err)
        return r < 0 ? .failure(PosixError(err)) : .success(r)
    }

    public func groupKind(ofNode node: String) -> GroupKind {
        IOMMUGroups.kind(ofNode: node)
    }

    public func devices(inGroupOfFD fd: Int32) -> [String]? {
        Posix.readLink("/proc/self/fd/\(fd)").flatMap(IOMMUGroups.groupName(ofNode:)).flatMap(IOMMUGroups.devices(inGroup:))
    }
}
