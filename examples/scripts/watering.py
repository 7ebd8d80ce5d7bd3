"""Script step of garden-orchestration.yaml: which plants of the bed need water today.

naftiko binds the step context as variables: the unit's inputs and every earlier step's
output, by step name (`bed`, `planted`; names with '-' only through `context["..."]`), then
the step's `with` entries (`today`). The script must assign `result`.
"""

on = today or date.today().isoformat()  # `today` comes from `with`; None when not sent
since = days_between(bed["lastWatered"], on)
due = []
for plant in planted:  # the lookup step's output, in the bed's planting order
    why = reason_to_water(plant["waterEveryDays"], since, bed["moisture"])
    if why:
        due.append({"plant": plant["commonName"], "reason": why})
result = {"daysSinceWatering": since, "due": due}
