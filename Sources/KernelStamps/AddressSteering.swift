#if canImport(Glibc)
import Glibc
#endif
import CKernelStamps

extension UDPSocket {
    /// Steers each datagram arriving on this socket's SO_REUSEPORT group to socket number
    /// hash(source address) mod `workers`, so one client (whatever its source port) always
    /// reaches the same member; the kernel's default 4-tuple hash would split a client that
    /// opens a new port per request. Sockets are numbered in the order they joined the group.
    ///
    /// A classic BPF program attached with SO_ATTACH_REUSEPORT_CBPF (socket(7)); it reads the
    /// last 32 bits of the source address at a negative offset from the network header
    /// (SKF_NET_OFF), which reuseport programs on UDP may do. Throws when the kernel refuses
    /// it; the group then keeps the 4-tuple hash.
    public func steerReusePortGroupBySourceAddress(workers: Int) throws(KernelError) {
        precondition(workers >= 1, "steering needs at least one worker")
        let sourceOffset: Int32 = family == .ipv4 ? 12 : 20
        var program = (
            SocketFilterInstruction(code: bpfLoadWordAbsolute, k: UInt32(bitPattern: socketFilterNetworkOffset + sourceOffset)),
            SocketFilterInstruction(code: bpfMultiplyConstant, k: 0x9E37_79B1),
            SocketFilterInstruction(code: bpfShiftRightConstant, k: 16),
            SocketFilterInstruction(code: bpfModuloConstant, k: UInt32(workers)),
            SocketFilterInstruction(code: bpfReturnAccumulator, k: 0))
        let result: Int32 = withUnsafeMutableBytes(of: &program) { bytes in
            var header = SocketFilterProgram(length: 5, filter: bytes.baseAddress!)
            return setsockopt(fileDescriptor, SOL_SOCKET, Int32(CK_SO_ATTACH_REUSEPORT_CBPF), &header,
                              socklen_t(MemoryLayout<SocketFilterProgram>.size))
        }
        if result != 0 { throw KernelError.fromErrno("setsockopt SO_ATTACH_REUSEPORT_CBPF (steer clients by address)") }
    }
}

/// struct sock_filter (linux/filter.h).
private struct SocketFilterInstruction {
    var code: UInt16
    var jumpIfTrue: UInt8 = 0
    var jumpIfFalse: UInt8 = 0
    var k: UInt32
}

/// struct sock_fprog (linux/filter.h).
private struct SocketFilterProgram {
    var length: UInt16
    var filter: UnsafeMutableRawPointer
}

// Classic BPF opcodes (linux/bpf_common.h), checked against the headers in shim.c.
private let bpfLoadWordAbsolute = UInt16(CK_BPF_LD_W_ABS)
private let bpfMultiplyConstant = UInt16(CK_BPF_ALU_MUL_K)
private let bpfShiftRightConstant = UInt16(CK_BPF_ALU_RSH_K)
private let bpfModuloConstant = UInt16(CK_BPF_ALU_MOD_K)
private let bpfReturnAccumulator = UInt16(CK_BPF_RET_A)
/// SKF_NET_OFF: offsets from here count from the network (IP) header.
private let socketFilterNetworkOffset = Int32(CK_SKF_NET_OFF)
