"""What an image's filesystems use, read from the image itself (see usage.py).

`Usage` is the map: the partition table and each ext2/3/4 or FAT partition's own allocation
map, read from an uncompressed image where they are, or from a stream as it passes; `needed`
says which bytes must be written. The rest of this package is its parts: the readers of one
filesystem each (extfs, fatfs), the base that feeds them (reader) and range arithmetic (ranges).
"""

from pifleet.flash.maps.usage import HEAD, Usage

__all__ = ["HEAD", "Usage"]
