"""A half-written file for the quickstart: pilotfish completes line 12 after ``return ``."""

from dataclasses import dataclass


@dataclass
class Rectangle:
    width: float
    height: float

    def area(self) -> float:
        return 
