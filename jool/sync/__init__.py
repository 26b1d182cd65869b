"""Session synchronization between translator nodes (joold; spec/joold.md)."""
