// Compiled only to build the LibTorch precompiled header that every LibTorch target reuses.
